// Entry point of index.html.

import { startUi } from "./controller.js";

startUi({ win: window, doc: document, fetchFn: window.fetch.bind(window) });
