/** Named errors of @wgmesh/nat. Callers match on `name`, not on message text. */

/** A STUN server did not answer a binding request in time (after all retransmissions). */
export class StunTimeoutError extends Error {
  static override name = 'StunTimeoutError'
  /** The server that did not answer, as "host:port" / "[v6]:port". */
  readonly server: string
  constructor (server: string, timeoutMs: number) {
    super(`STUN server ${server} did not answer within ${timeoutMs} ms`)
    this.name = 'StunTimeoutError'
    this.server = server
  }
}

/** A STUN query could not be sent, or the socket failed while waiting for the answer. */
export class StunQueryError extends Error {
  static override name = 'StunQueryError'
  readonly server: string
  constructor (server: string, message: string, options?: { cause?: unknown }) {
    super(`STUN query to ${server} failed: ${message}`, options)
    this.name = 'StunQueryError'
    this.server = server
  }
}

/** A caller passed an argument this package cannot use (bad address, port, transaction id…). */
export class InvalidArgumentError extends Error {
  static override name = 'InvalidArgumentError'
  constructor (message = 'Invalid argument') {
    super(message)
    this.name = 'InvalidArgumentError'
  }
}

/** No UPnP IGD / NAT-PMP gateway was found or answered before the deadline. */
export class GatewayNotFoundError extends Error {
  static override name = 'GatewayNotFoundError'
  constructor (message = 'No UPnP/NAT-PMP gateway found', options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'GatewayNotFoundError'
  }
}

/** The gateway was found but refused or failed the port mapping (see `cause`). */
export class PortMappingError extends Error {
  static override name = 'PortMappingError'
  /** Which protocol failed. */
  readonly method: 'upnp' | 'pmp'
  constructor (method: 'upnp' | 'pmp', message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'PortMappingError'
    this.method = method
  }
}
