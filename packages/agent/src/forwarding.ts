/**
 * A relay forwards between peers on its mesh interface. IPv4 forwarding is switched on for
 * that interface only; IPv6 has no per-interface forwarding switch, so it is switched on
 * globally (a relay should be a server with static addressing: forwarding hosts ignore router
 * advertisements). ICMP redirects are off: on a WireGuard interface they would only tell peers
 * to use a path that does not exist.
 */
import type { CommandRunner } from '@wgmesh/wireguard'

export async function enableForwarding (runner: CommandRunner, iface: string): Promise<void> {
  await runner.run(['sysctl', '-q', '-w',
    `net.ipv4.conf.${iface}.forwarding=1`,
    `net.ipv4.conf.${iface}.send_redirects=0`,
    'net.ipv4.conf.all.send_redirects=0',
    'net.ipv6.conf.all.forwarding=1'])
}
