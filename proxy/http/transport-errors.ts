// The one reading of a failed HTTP exchange (undici's errors, Node's socket errors, an abort): what
// kind of failure it was. The forwarding path turns the kind into a sidecar error code, the readiness
// probe into a reason, the agent client into a failure kind and a retry. Pure: it reads `code` and
// `name`, so it needs no undici import.

export type TransportFailure =
  /** Nothing listens there (ECONNREFUSED). */
  | "refused"
  | "connect_timeout"
  | "headers_timeout"
  | "body_timeout"
  /** Any other deadline: our own (AbortSignal.timeout, an abort), the OS's (ETIMEDOUT). */
  | "timeout"
  /** The connection broke: reset, closed by the other side, a write to a closed socket. */
  | "connection_lost"
  | "other";

export interface TransportError {
  readonly failure: TransportFailure;
  /** The error's code, e.g. UND_ERR_SOCKET, when it has one. */
  readonly code: string | undefined;
  /** `CODE: message`, for an operator (never a request or response body). */
  readonly detail: string;
}

const CONNECTION_LOST = new Set(["UND_ERR_SOCKET", "ECONNRESET", "EPIPE", "UND_ERR_CLOSED"]);

export function classifyTransportError(error: unknown): TransportError {
  const code = (error as { code?: unknown }).code;
  const codeText = typeof code === "string" ? code : undefined;
  const name = (error as { name?: unknown }).name;
  const message = (error as { message?: unknown }).message;
  const detail = codeText === undefined ? String(message ?? error) : `${codeText}: ${String(message ?? "")}`;
  let failure: TransportFailure = "other";
  if (codeText === "ECONNREFUSED") failure = "refused";
  else if (codeText === "UND_ERR_CONNECT_TIMEOUT") failure = "connect_timeout";
  else if (codeText === "UND_ERR_HEADERS_TIMEOUT") failure = "headers_timeout";
  else if (codeText === "UND_ERR_BODY_TIMEOUT") failure = "body_timeout";
  else if (
    name === "TimeoutError" ||
    name === "AbortError" ||
    codeText === "UND_ERR_ABORTED" ||
    codeText?.includes("TIMEOUT") ||
    codeText === "ETIMEDOUT"
  )
    failure = "timeout";
  else if (codeText !== undefined && CONNECTION_LOST.has(codeText)) failure = "connection_lost";
  return { failure, code: codeText, detail };
}

/** A deadline passed, whoever's it was (the connect, the headers, the body, our own timeout). */
export function isTimeout(failure: TransportFailure): boolean {
  return (
    failure === "connect_timeout" ||
    failure === "headers_timeout" ||
    failure === "body_timeout" ||
    failure === "timeout"
  );
}
