/**
 * What can go wrong talking to a Redfish service, as kinds a caller maps to its own codes:
 * unreachable (no answer in time, connection refused or reset), certificate (the TLS peer is not
 * who the CA file vouches for), auth (401/403), unsupported (the service does not offer what was
 * asked: refused before sending, or 405/501), protocol (an answer that is not the Redfish shape).
 */
export type RedfishErrorKind = 'unreachable' | 'certificate' | 'auth' | 'unsupported' | 'protocol';

export class RedfishError extends Error {
  override readonly name = 'RedfishError';
  constructor(
    readonly kind: RedfishErrorKind,
    message: string,
    /** The HTTP status, when the service answered. */
    readonly status?: number,
    /** The Redfish MessageId of the error answer, when it gave one (e.g. Base.1.8.PropertyUnknown). */
    readonly messageId?: string,
  ) {
    super(message);
  }
}
