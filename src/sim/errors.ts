// Bad simulator input (trace, tenants file, options): a coded error like every other refusal.
// The CLI maps it to exit code 2; anything else is a bug and exits 1.
import { AppError } from '../domain/errors.js';

export class SimInputError extends AppError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('INVALID_ARGUMENT', message, details);
    this.name = 'SimInputError';
  }
}
