// The JSON API client of the dashboard: every request carries the token the
// operator signed in with (kept in this tab's session storage only).

const KEY = "drydock-token";
export const API = "/api/v1.0";

export function token() { return sessionStorage.getItem(KEY); }
export function setToken(t) { sessionStorage.setItem(KEY, t); }
export function signOut() { sessionStorage.removeItem(KEY); }

/** An API answer that was not 2xx: its status and Drydock's message. */
export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function request(method, path, body, accept = "application/json") {
  const headers = { Authorization: `Bearer ${token()}`, Accept: accept };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try { const j = JSON.parse(text); message = j.message || message; } catch (_) { /* not JSON */ }
    throw new ApiError(res.status, message);
  }
  if (accept !== "application/json") return text;
  return text ? JSON.parse(text) : null;
}

export const get = (path) => request("GET", path);
export const post = (path, body) => request("POST", path, body);
export const metricsText = () => request("GET", "/metrics", undefined, "text/plain");
