/**
 * The JSON-safety check shared by everything that stores or sends values as JSON (the BullMQ
 * entry point's jobs and results, checkpoint records).
 */

/**
 * Where `value` stops surviving a `JSON.stringify` round trip, as a path such as
 * `value.prices[2]` with what was found there; `undefined` when it survives whole.
 */
export function jsonProblem(
  value: unknown,
  path = "value",
  seen = new Set<object>(),
): string | undefined {
  switch (typeof value) {
    case "string":
    case "boolean":
      return undefined;
    case "number":
      return Number.isFinite(value) ? undefined : `${path} is ${String(value)}`;
    case "object":
      break;
    default:
      return `${path} is ${value === undefined ? "undefined" : `a ${typeof value}`}`;
  }
  if (value === null) return undefined;
  if (seen.has(value)) return `${path} is a circular reference`;
  if (typeof (value as { toJSON?: unknown }).toJSON === "function") {
    return `${path} has a toJSON method (${kind(value)})`;
  }
  seen.add(value);
  try {
    if (Array.isArray(value)) {
      for (let index = 0; index < value.length; index++) {
        if (!(index in value)) return `${path}[${String(index)}] is a hole`;
        const problem = jsonProblem(value[index], `${path}[${String(index)}]`, seen);
        if (problem !== undefined) return problem;
      }
      return undefined;
    }
    const prototype: unknown = Object.getPrototypeOf(value);
    if (prototype !== Object.prototype && prototype !== null) return `${path} is ${kind(value)}`;
    if (Object.getOwnPropertySymbols(value).length > 0) return `${path} has symbol keys`;
    for (const [key, entry] of Object.entries(value)) {
      const problem = jsonProblem(entry, `${path}.${key}`, seen);
      if (problem !== undefined) return problem;
    }
    return undefined;
  } finally {
    seen.delete(value);
  }
}

function kind(value: object): string {
  const name = (value.constructor as { name?: unknown } | undefined)?.name;
  return typeof name === "string" && name !== "" ? `a ${name}` : "an object with a prototype";
}
