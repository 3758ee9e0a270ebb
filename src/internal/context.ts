/**
 * A shallow copy of `template` that keeps its prototype, so that a class instance stays an
 * instance of its class: what each item of `map` gets, so that concurrent items never share
 * one object and the template's own properties are never changed.
 *
 * The own enumerable properties are defined on the copy as data properties (the spread copies
 * by definition, not by assignment), and the prototype is set afterwards: an own `__proto__`
 * key (as `JSON.parse` makes) stays an own key instead of switching the prototype, and a
 * property that shadows a read-only or accessor property of the prototype is copied instead of
 * failing or calling a setter. For the common plain-object template the spread alone is also
 * the fastest copy there is.
 */
export function copyContext<C extends object>(template: C): C {
  const prototype = Object.getPrototypeOf(template) as object | null;
  const copy = { ...template };
  return prototype === Object.prototype ? copy : (Object.setPrototypeOf(copy, prototype) as C);
}
