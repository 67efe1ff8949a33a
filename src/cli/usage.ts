/** The `onshi` usage text (printed by `onshi help` and after a usage error). */
import { DEFAULT_CONFIG } from './context.js';

export const USAGE = `usage: onshi <command> [options]

  start [--config FILE]                 run the gateway daemon
  clients add NAME [--scope S[,S…]] [--config FILE]
                                        create a receipt-computer client; prints its token once.
                                        Scopes: full (default), inquiry, batch, events:read, admin-ops
  clients list [--config FILE]          list clients and their scopes (never tokens)
  clients revoke ID|NAME [--config FILE]
  audit verify [--config FILE] [--json] check the audit log's hash chain (read-only); exit 1 if broken
  status [--json]                       reader, card, line, outbox, cache, clock, certificates, TLS
                                        fingerprint (exit 0 ready, 1 not ready, 3 not running)
  doctor [--json] [--credentials DIR]   check pcscd, the reader, the line and TLS to central, the
                                        clock, disk space and SD write latency; says what to do
  admin reset                           new initial admin secret (printed once); ends admin sessions
  backup [--out FILE] (--passphrase-file FILE | --no-encrypt)
                                        config, keys and clients (not the cache); 0600, encrypted
                                        with a passphrase (or $ONSHI_BACKUP_PASSPHRASE)
  restore FILE [--only config,state,credentials] [--dry-run] [--force] [--passphrase-file FILE]
  support-bundle [--out FILE]           config without secrets, status, versions, redacted logs
  inquiry --numbers INSURER,SYMBOL,NUMBER,BRANCH --birthdate YYYYMMDD
          [--limit-consent] [--date YYYYMMDD] [--deadline MS] [--ws URL] [--token TOKEN]
                                        one check by insurance numbers; prints the result as JSON
  inquiry --card [--visual] [--confirm-last-try] [--limit-consent] [--reader NAME] …
                                        one check by My Number card; the PIN is read from standard
                                        input (one line per attempt), never from an argument
          both: [--known-birthdate D] [--known-kana KANA] [--known-sex 1|2] [--changed-insurer]
          [--consent medication,healthCheck,treatment,surgery] [--name-target shift_jis|cp932]
  reconciliation [list [--all] | handle ID] [--json] [--ws URL] [--token TOKEN]
                                        outage checks whose re-verification changed the answer
  batch submit FILE [--now] [--date YYYYMMDD] [--json] [--ws URL] [--token TOKEN]
                                        a batch inquiry (一括照会) from a CSV or JSON file (each entry
                                        with its own arbitraryId); without --now it waits for the
                                        batch schedule; prints the batch ID
  batch status ID [--json]              progress of a batch
  batch results ID [--json]             one line (or JSON object) per entry, keyed by arbitraryId
  rechecks [list [--state scheduled|found|expired] | run] [--json] [--ws URL] [--token TOKEN]
                                        time-lag rechecks after a change of insurer; run = the
                                        daily job, now
  sim …, sandbox                        simulators and the sandbox (see onshi sim --help)

The config file defaults to $ONSHI_CONFIG or ${DEFAULT_CONFIG}; every setting can be overridden with
ONSHI_* environment variables (see README). inquiry, reconciliation and batch read --ws/--token or
ONSHI_WS/ONSHI_TOKEN.`;
