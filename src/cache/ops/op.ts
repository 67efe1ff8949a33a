/** What every area's write operations share: the handler shape and the bound on stored error codes. */
import type { OpArgs, OpName, OpResult } from '../protocol.js';

/** One write operation: synchronous, run by the writer worker inside its savepoint; throws OnshiError for refusals. */
export type Op<K extends OpName> = (args: OpArgs<K>) => OpResult<K>;

/** Stored error codes are cut to this length (they are codes, never text with personal data). */
export const MAX_ERROR_LEN = 200;
