// Secrets never reach a log line: the fields that carry them are redacted by every logger (st-api's
// and the command-line programs'), once, instead of trusting every call site.
export const SECRET_REDACTION: { readonly paths: string[]; readonly censor: string } = {
  paths: [
    'authorization',
    'token',
    'password',
    'secret',
    'privateKey',
    '*.authorization',
    '*.password',
    '*.secret',
    '*.privateKey',
    'req.headers.authorization',
  ],
  censor: '[redacted]',
};
