// Every request to Stride goes through here: the bearer token (if one is
// set) on each call, one error type with the server's message, and status 0
// when the server cannot be reached at all.

const TOKEN_KEY = 'stride.token';

export function token() {
  return localStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(value) {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

function headers(extra) {
  const all = { Accept: 'application/json', ...extra };
  const bearer = token();
  if (bearer) all.Authorization = `Bearer ${bearer}`;
  return all;
}

/** `method path` with an optional JSON body; resolves to the parsed answer. */
export async function api(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: headers(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (error) {
    throw new ApiError(0, `Stride is unreachable (${error.message})`);
  }
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) {
    throw new ApiError(response.status, describe(response.status, parsed, text), parsed);
  }
  return parsed;
}

/** Raw text (the metrics exposition); null when the server has no such route. */
export async function text(path) {
  const response = await fetch(path, { headers: headers({ Accept: 'text/plain' }), cache: 'no-store' });
  if (response.status === 404) return null;
  if (!response.ok) throw new ApiError(response.status, `${path}: HTTP ${response.status}`);
  return response.text();
}

function describe(status, body, text) {
  if (status === 401 || status === 403) {
    return `${status}: ${body?.message || 'not allowed'}; set an API token (top right)`;
  }
  let message = body?.message || text || `HTTP ${status}`;
  for (const detail of body?.details || []) {
    message += `; ${detail.path}: ${(detail.errors || []).join(', ')}`;
  }
  return `${status}: ${message}`;
}

/** The websocket URL of `/v1/stream`; browsers cannot set headers on a
 * websocket, so a token travels as RFC 6750's `access_token` parameter. */
export function streamUrl(from) {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const params = new URLSearchParams({ from: String(from) });
  const bearer = token();
  if (bearer) params.set('access_token', bearer);
  return `${scheme}://${location.host}/v1/stream?${params}`;
}

/** `/v2/apps/prod/web`: app ids are paths already. */
export function appPath(id) {
  return `/v2/apps${id.split('/').map(encodeURIComponent).join('/')}`;
}
