/**
 * Errors as typed values. Every failure that crosses a module boundary is an OnshiError with a
 * stable `code` a receipt computer can switch on, a `retryable` hint, and details that never hold
 * personal data (they may be logged at info level).
 */
export class OnshiError<C extends string = string> extends Error {
  readonly code: C;
  readonly retryable: boolean;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: C,
    message: string,
    opts: { retryable?: boolean; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'OnshiError';
    this.code = code;
    this.retryable = opts.retryable ?? false;
    this.details = Object.freeze({ ...(opts.details ?? {}) });
  }

  toJSON(): { code: C; message: string; retryable: boolean; details?: Record<string, unknown> } {
    const out: { code: C; message: string; retryable: boolean; details?: Record<string, unknown> } = {
      code: this.code,
      message: this.message,
      retryable: this.retryable,
    };
    if (Object.keys(this.details).length > 0) out.details = { ...this.details };
    return out;
  }
}

export function isOnshiError(e: unknown, code?: string): e is OnshiError {
  return e instanceof OnshiError && (code === undefined || e.code === code);
}
