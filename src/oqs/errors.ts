import { OnshiError } from '../core/errors.js';

/** Stable codes for every failure of the OQS wire format (see docs/oqs.md). */
export type OqsErrorCode =
  | 'OQS_XML_TOO_LARGE'
  | 'OQS_XML_MALFORMED'
  | 'OQS_XML_FORBIDDEN'
  | 'OQS_XML_TOO_DEEP'
  | 'OQS_ENCODING_UNSUPPORTED'
  | 'OQS_ENCODING_MISMATCH'
  | 'OQS_ENCODING_UNREPRESENTABLE'
  | 'OQS_MESSAGE_INVALID';

/**
 * A wire-format failure. `details` may hold `path` (element path such as
 * `MessageBody/QualificationConfirmSearchInfo/InsurerNumber`), `line`/`column`, `reason`,
 * `codePoint` — never the personal value itself, so it can be logged. Never retryable:
 * the same bytes fail the same way.
 */
export class OqsError extends OnshiError<OqsErrorCode> {
  constructor(
    code: OqsErrorCode,
    message: string,
    opts: { retryable?: boolean; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(code, message, opts);
    this.name = 'OqsError';
  }
}

export function isOqsError(e: unknown, code?: OqsErrorCode): e is OqsError {
  return e instanceof OqsError && (code === undefined || e.code === code);
}

/** OQS_MESSAGE_INVALID naming the offending path and a machine-readable reason. */
export function invalidMessage(path: string, reason: string, message?: string): OqsError {
  return new OqsError('OQS_MESSAGE_INVALID', message ?? `${path || '(root)'}: ${reason}`, {
    details: { path, reason },
  });
}
