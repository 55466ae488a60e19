// Passkeys (WebAuthn, with @simplewebauthn/browser) for the login, second-factor and account pages
// (/static/webauthn.js, global SimpleWebAuthnBrowser). A form marked data-passkey="login" or "register" gets its
// options from data-options (a same-origin POST carrying the form's CSRF token), asks the browser, puts the answer
// in the form's hidden "response" field and submits it. Without WebAuthn the button stays hidden and the page works
// as before (progressive enhancement).
// Conditional UI: on a page with a field marked autocomplete="… webauthn" (the login page's personal ID), the
// browser's autofill also offers the citizen's passkeys; choosing one submits the same login form as the button.
(() => {
  const lib = globalThis.SimpleWebAuthnBrowser;
  if (!lib || !lib.browserSupportsWebAuthn()) return;

  /** Options for `form`, from the server (the challenge is bound to the interaction or session there). */
  async function optionsFor(form) {
    const body = new URLSearchParams();
    for (const name of ['csrf', 'lang']) body.set(name, form.elements[name]?.value ?? '');
    const res = await fetch(form.dataset.options, { method: 'POST', body, credentials: 'same-origin' });
    if (!res.ok) throw new Error(`options: ${res.status}`);
    return res.json();
  }

  /** Puts the browser's answer in the form and submits it (once). */
  function submitAnswer(form, answer) {
    form.elements.response.value = JSON.stringify(answer);
    form.dataset.ready = 'yes';
    form.submit();
  }

  // Autofill: one conditional request per page load. The button's own request replaces it (the library aborts it,
  // and the server keeps only the newest challenge: the button waits until the autofill's options have arrived), so
  // its failure is silent.
  const field = document.querySelector('input[autocomplete$="webauthn"]');
  const login = document.querySelector('form[data-passkey="login"]');
  let autofillOptions = Promise.resolve();
  if (field && login && typeof lib.browserSupportsWebAuthnAutofill === 'function') {
    const options = lib
      .browserSupportsWebAuthnAutofill()
      .then((supported) => (supported ? optionsFor(login) : undefined));
    autofillOptions = options.catch(() => undefined);
    options
      .then(async (optionsJSON) => {
        if (!optionsJSON) return;
        const answer = await lib.startAuthentication({ optionsJSON, useBrowserAutofill: true });
        if (login.dataset.ready !== 'yes') submitAnswer(login, answer);
      })
      .catch(() => {
        // Aborted by the button, dismissed, or not offered by this browser: the page works as it is.
      });
  }

  for (const form of document.querySelectorAll('form[data-passkey]')) {
    const button = form.querySelector('button');
    const error = form.querySelector('[data-passkey-error]');
    if (button) button.hidden = false;
    form.addEventListener('submit', async (event) => {
      if (form.dataset.ready === 'yes') return;
      event.preventDefault();
      if (error) error.hidden = true;
      if (button) button.disabled = true;
      try {
        await autofillOptions;
        const optionsJSON = await optionsFor(form);
        const answer =
          form.dataset.passkey === 'register'
            ? await lib.startRegistration({ optionsJSON })
            : await lib.startAuthentication({ optionsJSON });
        submitAnswer(form, answer);
      } catch {
        if (error) error.hidden = false;
        if (button) button.disabled = false;
      }
    });
  }

})();
