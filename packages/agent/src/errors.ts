/** Named errors of @wgmesh/agent; the CLI turns them into a message and exit code. */

export class StateError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'StateError'
  }
}

export class MeshKeyError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'MeshKeyError'
  }
}

export class ControlError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'ControlError'
  }
}
