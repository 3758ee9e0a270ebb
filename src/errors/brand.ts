/**
 * Cross-copy `instanceof` for the library's error classes.
 *
 * The package ships an ESM and a CommonJS build, and each entry point may hold its own copy
 * of a class. An error thrown by one copy must still satisfy `instanceof` against another, so
 * each class marks its prototype with a registered symbol (`Symbol.for`, shared by every copy
 * in the realm) and checks that mark in `Symbol.hasInstance`.
 *
 * Both are installed from outside the class body, by {@link brandClass}: a class whose body
 * names the class itself is renamed by the bundler (`class _StageExecutionError`), and its
 * `name` would leak into stack traces and `console.log`.
 */

/** The registered symbol that marks instances of the class called `className`. */
export function brandOf(className: string): symbol {
  return Symbol.for(`async-pipeline.${className}`);
}

/**
 * Brands `target` (one of the library's classes, named `className`): marks its prototype, and
 * makes `value instanceof target` true for any value that carries the mark, whichever copy of
 * the library (the ESM or the CommonJS build, any entry point) created it. A user's subclass
 * inherits the check but falls back to the ordinary prototype-chain test.
 */
export function brandClass(
  target: abstract new (...args: never[]) => object,
  className: string,
): void {
  const brand = brandOf(className);
  Object.defineProperty(target.prototype, brand, { value: true });
  Object.defineProperty(target, Symbol.hasInstance, {
    value: function hasInstance(this: unknown, value: unknown): boolean {
      if (this !== target) return Function.prototype[Symbol.hasInstance].call(this, value);
      return (
        typeof value === "object" &&
        value !== null &&
        (value as Record<symbol, unknown>)[brand] === true
      );
    },
    configurable: true,
  });
}
