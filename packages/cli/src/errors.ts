/** An error the user can act on: printed without a stack, exits with `code`. */
export class ExitError extends Error {
  readonly code: number
  constructor (message: string, code = 1) {
    super(message)
    this.name = 'ExitError'
    this.code = code
  }
}
