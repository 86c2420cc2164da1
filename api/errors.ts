// Every error a client can see: a stable code, a truthful HTTP status, a short title.
// The table is the contract; README.md lists it and the OpenAPI document enumerates it.
import { CatalogUnavailableError } from './catalog/types.ts';

export const PROBLEMS = {
  MALFORMED_JSON: { status: 400, title: 'The request body is not valid JSON' },
  TOKEN_MISSING: { status: 401, title: 'A bearer token is required' },
  TOKEN_MALFORMED: { status: 401, title: 'The bearer token is not a well-formed JWT' },
  TOKEN_ALGORITHM_REJECTED: { status: 401, title: 'The token is signed with an algorithm or key that is not accepted' },
  TOKEN_SIGNATURE_INVALID: { status: 401, title: 'The token signature does not verify' },
  TOKEN_EXPIRED: { status: 401, title: 'The token has expired' },
  TOKEN_NOT_YET_VALID: { status: 401, title: 'The token is not valid yet' },
  TOKEN_CLAIMS_INVALID: { status: 401, title: 'The token issuer, audience or subject is not accepted' },
  NOT_PURCHASED: { status: 403, title: 'The viewer has not bought, rented or subscribed to this content' },
  RENTAL_EXPIRED: { status: 403, title: 'The rental of this content has expired' },
  SUBSCRIPTION_EXPIRED: { status: 403, title: 'The subscription that includes this content has expired' },
  DEVICE_NOT_ALLOWED: { status: 403, title: "The viewer's rights do not cover this device class" },
  QUALITY_NOT_AVAILABLE: { status: 403, title: 'No rendition of this content is within the qualities the viewer may play' },
  MANIFEST_TOKEN_INVALID: { status: 403, title: 'The manifest URL is not signed for this path' },
  MANIFEST_TOKEN_EXPIRED: { status: 403, title: 'The manifest URL has expired; ask for a new playback URL' },
  CONTENT_NOT_FOUND: { status: 404, title: 'No such content' },
  MANIFEST_NOT_FOUND: { status: 404, title: 'The origin has no such manifest' },
  NOT_FOUND: { status: 404, title: 'No such resource' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed on this resource' },
  BODY_TOO_LARGE: { status: 413, title: 'The request body is too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'The request body must be application/json' },
  INVALID_REQUEST: { status: 422, title: 'The request body does not match the schema' },
  UNKNOWN_DEVICE: { status: 422, title: 'Unknown device class' },
  PROTOCOL_NOT_SUPPORTED: { status: 422, title: 'The device class does not support this protocol' },
  PROTOCOL_NOT_AVAILABLE: { status: 422, title: 'The content is not packaged in this protocol' },
  RATE_LIMITED: { status: 429, title: 'Too many playback requests for this viewer' },
  INTERNAL_ERROR: { status: 500, title: 'Internal error' },
  MANIFEST_ORIGIN_INVALID: { status: 502, title: "The origin's answer is not a usable manifest" },
  DEPENDENCY_UNAVAILABLE: { status: 503, title: 'A dependency is unavailable; retry shortly' },
  MANIFEST_ORIGIN_UNAVAILABLE: { status: 503, title: 'The manifest origin is unavailable and no recent copy is cached; retry shortly' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemCode = keyof typeof PROBLEMS;

export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  code: ProblemCode;
  detail?: string;
  errors?: { path: string; message: string }[];
}

/** An operational error with a stable code; anything else reaching the error handler is a bug (500). */
export class AppError extends Error {
  readonly code: ProblemCode;
  readonly status: number;
  readonly detail: string | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly errors: { path: string; message: string }[] | undefined;

  constructor(
    code: ProblemCode,
    options: { detail?: string; retryAfterSeconds?: number; errors?: { path: string; message: string }[]; cause?: unknown } = {},
  ) {
    super(options.detail ?? PROBLEMS[code].title, { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = PROBLEMS[code].status;
    this.detail = options.detail;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.errors = options.errors;
  }

  toProblem(): ProblemDetails {
    return {
      type: `urn:st-api:problem:${this.code}`,
      title: PROBLEMS[this.code].title,
      status: this.status,
      code: this.code,
      ...(this.detail === undefined ? {} : { detail: this.detail }),
      ...(this.errors === undefined ? {} : { errors: this.errors }),
    };
  }
}

/** Body-parser failures carry a `type`; map them to our codes instead of leaking their messages. */
const PARSER_ERRORS: Record<string, AppError['code']> = {
  'entity.parse.failed': 'MALFORMED_JSON',
  'entity.too.large': 'BODY_TOO_LARGE',
  'encoding.unsupported': 'UNSUPPORTED_MEDIA_TYPE',
  'charset.unsupported': 'UNSUPPORTED_MEDIA_TYPE',
  'request.aborted': 'MALFORMED_JSON',
  'request.size.invalid': 'MALFORMED_JSON',
};

/** How long a client should wait before retrying a play that failed because the catalog was unreachable. */
const CATALOG_RETRY_AFTER_SECONDS = 5;

/** What a thrown error becomes for the client: its own problem, a mapped one, or INTERNAL_ERROR (a bug). */
export function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  // The operational cause (its error code) is what gets logged, never the message.
  if (error instanceof CatalogUnavailableError) {
    return new AppError('DEPENDENCY_UNAVAILABLE', {
      detail: 'The catalog database is unavailable',
      retryAfterSeconds: CATALOG_RETRY_AFTER_SECONDS,
      cause: error.cause,
    });
  }
  // The router could not decode a path parameter (`%ff`): no resource has such a path.
  if (error instanceof URIError) return new AppError('NOT_FOUND');
  const parserType = (error as { type?: unknown } | null)?.type;
  if (typeof parserType === 'string' && parserType in PARSER_ERRORS) return new AppError(PARSER_ERRORS[parserType] ?? 'MALFORMED_JSON');
  // A body that does not inflate as its Content-Encoding says (zlib or brotli refused it): the
  // client's fault, and the body parser marks it 400.
  const { status, code } = (error ?? {}) as { status?: unknown; code?: unknown };
  if (status === 400 && typeof code === 'string' && /^(Z_|ERR__ERROR_)/.test(code)) {
    return new AppError('MALFORMED_JSON', { detail: 'The body does not decode as its Content-Encoding says' });
  }
  return new AppError('INTERNAL_ERROR', { cause: error });
}
