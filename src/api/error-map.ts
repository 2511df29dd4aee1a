// From anything thrown while serving a request to a coded error: one mapping for every route group.
import type { FastifyError } from 'fastify';
import { AppError } from '../domain/errors.js';
import { isUniqueViolation, isUnstorableText } from '../store/db.js';

/** Maps anything thrown while serving a request to a coded error. */
export function toAppError(err: FastifyError): AppError {
  if (err instanceof AppError) return err;
  if (err.validation) {
    const problems = err.validation.map((v) => {
      const where = `${err.validationContext ?? 'body'}${v.instancePath || ''}`;
      const p = v.params as Record<string, unknown>;
      if (v.keyword === 'additionalProperties')
        return { path: `${where}/${p.additionalProperty}`, message: 'unknown field' };
      if (v.keyword === 'required') return { path: `${where}/${p.missingProperty}`, message: 'required' };
      return { path: where, message: v.message ?? 'invalid' };
    });
    const first = problems[0];
    return new AppError(
      'VALIDATION_FAILED',
      `${first.path}: ${first.message}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`,
      {
        errors: problems,
      },
    );
  }
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AppError('INVALID_JSON', `request body is not valid JSON: ${err.message}`);
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError('PAYLOAD_TOO_LARGE', 'request body is larger than the limit of this route');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError('UNSUPPORTED_MEDIA_TYPE', 'send request bodies as application/json');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AppError('INVALID_ARGUMENT', 'content-length does not match the body');
  }
  if (err instanceof SyntaxError || (err.statusCode === 400 && /JSON/.test(err.message))) {
    return new AppError('INVALID_JSON', `request body is not valid JSON: ${err.message}`);
  }
  if (isUniqueViolation(err)) return new AppError('CONFLICT', 'a concurrent request changed the same resource; retry');
  if (isUnstorableText(err)) return new AppError('INVALID_ARGUMENT', 'text in the request contains a NUL character');
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
    return new AppError('INVALID_ARGUMENT', err.message);
  }
  return new AppError('INTERNAL', 'internal error; the request id in x-request-id finds it in the server log');
}
