/**
 * Errors with stable codes. Callers (API, CLI, tests) match on `code`, never on the message.
 * The HTTP status lives beside the code so every layer reports the same thing.
 */
export const ErrorCode = {
  Validation: 'KVMF_ERR_VALIDATION',
  NotFound: 'KVMF_ERR_NOT_FOUND',
  AlreadyExists: 'KVMF_ERR_ALREADY_EXISTS',
  InUse: 'KVMF_ERR_IN_USE',
  CidrOverlap: 'KVMF_ERR_CIDR_OVERLAP',
  IpOutsideNetwork: 'KVMF_ERR_IP_OUTSIDE_NETWORK',
  IpInDynamicRange: 'KVMF_ERR_IP_IN_DYNAMIC_RANGE',
  DuplicateMac: 'KVMF_ERR_DUPLICATE_MAC',
  DuplicateIp: 'KVMF_ERR_DUPLICATE_IP',
  DuplicateHostname: 'KVMF_ERR_DUPLICATE_HOSTNAME',
  UnknownSite: 'KVMF_ERR_UNKNOWN_SITE',
  UnknownNetwork: 'KVMF_ERR_UNKNOWN_NETWORK',
  UnknownProfile: 'KVMF_ERR_UNKNOWN_PROFILE',
  ImportRejected: 'KVMF_ERR_IMPORT_REJECTED',
  BadRequest: 'KVMF_ERR_BAD_REQUEST',
  Unauthorized: 'KVMF_ERR_UNAUTHORIZED',
  Forbidden: 'KVMF_ERR_FORBIDDEN',
  Internal: 'KVMF_ERR_INTERNAL',
  StoreLocked: 'KVMF_ERR_STORE_LOCKED',
  VmRunning: 'KVMF_ERR_VM_RUNNING',
  HypervisorUnavailable: 'KVMF_ERR_HYPERVISOR_UNAVAILABLE',
  NoPlacement: 'KVMF_ERR_NO_PLACEMENT',
  Libvirt: 'KVMF_ERR_LIBVIRT',
  TooManyAttempts: 'KVMF_ERR_TOO_MANY_ATTEMPTS',
  AuditUnavailable: 'KVMF_ERR_AUDIT_UNAVAILABLE',
  OpenModeRefused: 'KVMF_ERR_OPEN_MODE_REFUSED',
  TokenExceedsCaller: 'KVMF_ERR_TOKEN_EXCEEDS_CALLER',
  BadPackageName: 'KVMF_ERR_BAD_PACKAGE_NAME',
  BadPasswordHash: 'KVMF_ERR_BAD_PASSWORD_HASH',
  ControlCharacter: 'KVMF_ERR_CONTROL_CHARACTER',
  NulCharacter: 'KVMF_ERR_NUL_CHARACTER',
  MethodNotAllowed: 'KVMF_ERR_METHOD_NOT_ALLOWED',
  WrongBuildState: 'KVMF_ERR_WRONG_BUILD_STATE',
  NoBmc: 'KVMF_ERR_NO_BMC',
  BmcUnreachable: 'KVMF_ERR_BMC_UNREACHABLE',
  BmcAuth: 'KVMF_ERR_BMC_AUTH',
  BmcUnsupported: 'KVMF_ERR_BMC_UNSUPPORTED',
  BmcProtocol: 'KVMF_ERR_BMC_PROTOCOL',
  BmcCertificate: 'KVMF_ERR_BMC_CERTIFICATE',
  SecretUnavailable: 'KVMF_ERR_SECRET_UNAVAILABLE',
  StoreUnavailable: 'KVMF_ERR_STORE_UNAVAILABLE',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const httpStatusOf: Record<ErrorCode, number> = {
  KVMF_ERR_VALIDATION: 422,
  KVMF_ERR_NOT_FOUND: 404,
  KVMF_ERR_ALREADY_EXISTS: 409,
  KVMF_ERR_IN_USE: 409,
  KVMF_ERR_CIDR_OVERLAP: 409,
  KVMF_ERR_IP_OUTSIDE_NETWORK: 422,
  KVMF_ERR_IP_IN_DYNAMIC_RANGE: 422,
  KVMF_ERR_DUPLICATE_MAC: 409,
  KVMF_ERR_DUPLICATE_IP: 409,
  KVMF_ERR_DUPLICATE_HOSTNAME: 409,
  KVMF_ERR_UNKNOWN_SITE: 422,
  KVMF_ERR_UNKNOWN_NETWORK: 422,
  KVMF_ERR_UNKNOWN_PROFILE: 422,
  KVMF_ERR_IMPORT_REJECTED: 422,
  KVMF_ERR_BAD_REQUEST: 400,
  KVMF_ERR_UNAUTHORIZED: 401,
  KVMF_ERR_FORBIDDEN: 403,
  KVMF_ERR_INTERNAL: 500,
  KVMF_ERR_STORE_LOCKED: 503,
  KVMF_ERR_VM_RUNNING: 409,
  KVMF_ERR_HYPERVISOR_UNAVAILABLE: 503,
  KVMF_ERR_NO_PLACEMENT: 409,
  KVMF_ERR_LIBVIRT: 502,
  KVMF_ERR_TOO_MANY_ATTEMPTS: 429,
  KVMF_ERR_AUDIT_UNAVAILABLE: 503,
  KVMF_ERR_OPEN_MODE_REFUSED: 403,
  KVMF_ERR_TOKEN_EXCEEDS_CALLER: 403,
  KVMF_ERR_BAD_PACKAGE_NAME: 422,
  KVMF_ERR_BAD_PASSWORD_HASH: 422,
  KVMF_ERR_CONTROL_CHARACTER: 422,
  KVMF_ERR_NUL_CHARACTER: 400,
  KVMF_ERR_METHOD_NOT_ALLOWED: 405,
  KVMF_ERR_WRONG_BUILD_STATE: 409,
  KVMF_ERR_NO_BMC: 409,
  // The BMC failed, not the caller: gateway statuses, so a client never takes them for its own token or request.
  KVMF_ERR_BMC_UNREACHABLE: 504,
  KVMF_ERR_BMC_AUTH: 502,
  KVMF_ERR_BMC_UNSUPPORTED: 422,
  KVMF_ERR_BMC_PROTOCOL: 502,
  KVMF_ERR_BMC_CERTIFICATE: 502,
  KVMF_ERR_SECRET_UNAVAILABLE: 503,
  KVMF_ERR_STORE_UNAVAILABLE: 503,
};

export class KvmfleetError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;
  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = 'KvmfleetError';
    this.code = code;
    this.details = details;
  }
  get httpStatus(): number {
    return httpStatusOf[this.code];
  }
}

/** One problem found while validating an input record (a row of an import, a field of a request). */
export interface Problem {
  readonly code: ErrorCode;
  readonly message: string;
  readonly field?: string;
}

export function problemsToError(problems: readonly Problem[]): KvmfleetError {
  const first = problems[0];
  if (!first) throw new Error('problemsToError needs at least one problem');
  return new KvmfleetError(first.code, first.message, problems.length > 1 ? { problems } : undefined);
}
