/** Named errors of @wgmesh/wireguard. Callers match on `name`, not on message text. */

/** An OS command exited non-zero (or could not be started, or timed out). */
export class CommandFailedError extends Error {
  static override name = 'CommandFailedError'
  /** The argv that was run. */
  readonly argv: string[]
  /** Exit code; 127 = could not be started, 124 = timed out. */
  readonly code: number
  readonly stdout: string
  readonly stderr: string

  constructor (argv: string[], code: number, stderr: string, stdout = '', options?: { cause?: unknown }) {
    const detail = stderr.trim().split('\n')[0] ?? ''
    super(`Command failed (exit ${code}): ${argv.join(' ')}${detail === '' ? '' : `: ${detail}`}`, options)
    this.name = 'CommandFailedError'
    this.argv = argv
    this.code = code
    this.stdout = stdout
    this.stderr = stderr
  }
}

/** `wg show <if> dump` output could not be parsed. */
export class DumpParseError extends Error {
  static override name = 'DumpParseError'
  constructor (message = 'Malformed `wg show dump` output') {
    super(message)
    this.name = 'DumpParseError'
  }
}

/** `ip -o addr show` / `ip -o link show` output could not be parsed. */
export class IpOutputParseError extends Error {
  static override name = 'IpOutputParseError'
  constructor (message = 'Malformed `ip` output') {
    super(message)
    this.name = 'IpOutputParseError'
  }
}

/** Backend 'existing' was chosen but the interface does not exist. */
export class InterfaceMissingError extends Error {
  static override name = 'InterfaceMissingError'
  constructor (message = 'WireGuard interface does not exist') {
    super(message)
    this.name = 'InterfaceMissingError'
  }
}

/** `apply()` was given a desired state for another interface than the configurator's. */
export class InterfaceMismatchError extends Error {
  static override name = 'InterfaceMismatchError'
  constructor (message = 'Desired state names a different interface') {
    super(message)
    this.name = 'InterfaceMismatchError'
  }
}

/** A WireGuard key is not 32 bytes of base64. */
export class InvalidKeyError extends Error {
  static override name = 'InvalidKeyError'
  constructor (message = 'Invalid WireGuard key') {
    super(message)
    this.name = 'InvalidKeyError'
  }
}

/** A UAPI `get` response (wireguard-go's configuration protocol) is malformed or too large. */
export class UapiParseError extends Error {
  static override name = 'UapiParseError'
  constructor (message = 'Malformed UAPI response') {
    super(message)
    this.name = 'UapiParseError'
  }
}

/** A UAPI `set` request could not be encoded (bad endpoint, allowed-ip, port, ...). Never carries key material. */
export class UapiEncodeError extends Error {
  static override name = 'UapiEncodeError'
  constructor (message = 'Cannot encode UAPI request') {
    super(message)
    this.name = 'UapiEncodeError'
  }
}

/** The userspace WireGuard implementation answered a UAPI request with a non-zero `errno`. */
export class UapiError extends Error {
  static override name = 'UapiError'
  /** The interface the request was for. */
  readonly interface: string
  readonly op: 'get' | 'set'
  /** The `errno=` value as sent (wireguard-go sends negative errno values, e.g. -22 = EINVAL). */
  readonly errno: number

  constructor (ifname: string, op: 'get' | 'set', errno: number) {
    super(`UAPI ${op} on ${ifname} failed: errno=${errno}`)
    this.name = 'UapiError'
    this.interface = ifname
    this.op = op
    this.errno = errno
  }
}

/** The UAPI socket could not be reached, closed mid-request, or did not answer in time. */
export class UapiConnectionError extends Error {
  static override name = 'UapiConnectionError'
  readonly interface: string
  /** 'ETIMEDOUT', 'ECONNREFUSED', 'ENOENT', 'ECLOSED' (closed mid-request), ... */
  readonly code: string

  constructor (ifname: string, code: string, message: string, options?: { cause?: unknown }) {
    super(`UAPI ${ifname}: ${message}`, options)
    this.name = 'UapiConnectionError'
    this.interface = ifname
    this.code = code
  }
}
