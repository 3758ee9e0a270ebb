/**
 * Cross-copy `instanceof` for the library's error classes.
 *
 * The package ships an ESM and a CommonJS build, and each entry point may hold its own copy
 * of a class. An error thrown by one copy must still satisfy `instanceof` against another, so
 * each class marks its prototype with a registered symbol (`Symbol.for`, shared by every copy
 * in the realm) and checks that mark in `Symbol.hasInstance`.
 */

/** The registered symbol that marks instances of the class called `className`. */
export function brandOf(className: string): symbol {
  return Symbol.for(`async-pipeline.${className}`);
}

/**
 * `instanceof` for a branded class: true when `value` carries `brand`. A user's subclass
 * (`target` other than `own`) falls back to the ordinary prototype-chain check.
 */
export function hasBrand(target: unknown, own: unknown, brand: symbol, value: unknown): boolean {
  if (target !== own) {
    return Function.prototype[Symbol.hasInstance].call(target, value);
  }
  return (
    typeof value === "object" &&
    value !== null &&
    (value as Record<symbol, unknown>)[brand] === true
  );
}
