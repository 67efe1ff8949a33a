/**
 * The OQS Web API endpoints (spec §0.2): login, then search with the idToken in Authorization.
 * The card paths are this project's simulator's stand-in for the terminal-side card flow, whose
 * real interface is not public.
 */
export const WEB_API_PATHS = {
  auth: '/oqs-api-pro/MSA12020/ILI12020SV01/auth',
  search: '/oqs-api-pro/MSA01030/ILI01030SV01/search',
  cardChallenge: '/oqs-api-pro/sim/card/challenge',
  cardSearch: '/oqs-api-pro/sim/card/search',
  // Batch inquiry (spec §5) in the Web API's JSON form: the real endpoints are not public either.
  batchSubmit: '/oqs-api-pro/sim/batch/submit',
  batchFetch: '/oqs-api-pro/sim/batch/fetch',
  /** the JPKI CRL (DER), for the gateway's offline revocation check */
  cardCrl: '/oqs-api-pro/sim/card/crl',
} as const;
