// The one way pages call the API: JSON in and out, problem+json errors as ApiError.
// A 401 means the session ended: go to the sign-in page and come back here afterwards.

export class ApiError extends Error {
  constructor(status, problem, url) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.url = url;
  }
  get title() { return this.problem.title || `HTTP ${this.status}`; }
  get detail() { return this.problem.detail || ""; }
  get field() { return this.problem.field || null; }
}

export function loginUrl(back = location.pathname + location.search) {
  return `/.auth/login/aad?post_login_redirect_uri=${encodeURIComponent(back)}`;
}

async function readProblem(response) {
  const text = await response.text();
  try {
    const data = JSON.parse(text);
    if (data && typeof data === "object") return data;
  } catch { /* not JSON: fall through */ }
  return { title: response.statusText || `HTTP ${response.status}`, detail: text.slice(0, 300) };
}

export async function api(path, { method = "GET", body, headers = {}, redirectOn401 = true } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin" };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, {
      title: "The API could not be reached",
      detail: `${method} ${path} failed before an answer arrived (${err.message}).`,
    }, path);
  }
  if (response.status === 401 && redirectOn401) {
    location.assign(loginUrl());
  }
  if (!response.ok) throw new ApiError(response.status, await readProblem(response), path);
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? response.json() : response.text();
}

// Every item of a paged list (the API answers at most `limit` items and a nextCursor to the
// rest): follows the cursors and answers one page holding them all.
export async function apiAll(path) {
  const items = [];
  const sep = path.includes("?") ? "&" : "?";
  let cursor = null;
  do {
    const page = await api(`${path}${sep}limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return { items, nextCursor: null };
}

// URL query helpers for the pages' ?p=&e=&id= parameters.
export function param(name) {
  return new URLSearchParams(location.search).get(name);
}

export function qs(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
