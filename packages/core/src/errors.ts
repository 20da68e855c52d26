/** Named errors of @wgmesh/core. Callers match on `name`, not on message text. */

export class InvalidConfigError extends Error {
  constructor (message = 'Invalid configuration') {
    super(message)
    this.name = 'InvalidConfigError'
  }
}

export class InvalidAddressError extends Error {
  constructor (message = 'Invalid address') {
    super(message)
    this.name = 'InvalidAddressError'
  }
}

export class AddressSpaceExhaustedError extends Error {
  constructor (message = 'No free overlay address left in the mesh range') {
    super(message)
    this.name = 'AddressSpaceExhaustedError'
  }
}
