// This tab's session id, kept in sessionStorage so that a reload finds (and can release) it.

const KEY = "spinup.session";

export function createSessionStore(storage) {
  return {
    load: () => {
      try {
        return storage.getItem(KEY);
      } catch {
        return null; // storage disabled: the session lives as long as the page
      }
    },
    save: (id) => {
      try {
        if (id === null) storage.removeItem(KEY);
        else storage.setItem(KEY, id);
      } catch {
        // Storage disabled or full: losing reload survival is better than failing the action.
      }
    },
  };
}
