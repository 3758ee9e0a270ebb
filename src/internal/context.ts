/**
 * A shallow copy of `template` that keeps its prototype, so that a class instance stays an
 * instance of its class: what each item of `map` gets, so that concurrent items never share
 * one object and the template's own properties are never changed.
 */
export function copyContext<C extends object>(template: C): C {
  return Object.assign(
    Object.create(Object.getPrototypeOf(template) as object | null) as C,
    template,
  );
}
