// Passkeys (WebAuthn) for the login, second-factor and account pages, with @simplewebauthn/browser
// (/static/webauthn.js, global SimpleWebAuthnBrowser). A form marked data-passkey="login" or "register" gets its
// options from data-options (a same-origin POST carrying the form's CSRF token), asks the browser, puts the answer
// in the form's hidden "response" field and submits it. Without WebAuthn the button stays hidden.
(() => {
  const lib = globalThis.SimpleWebAuthnBrowser;
  if (!lib || !lib.browserSupportsWebAuthn()) return;
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
        const body = new URLSearchParams();
        for (const name of ['csrf', 'lang']) body.set(name, form.elements[name]?.value ?? '');
        const res = await fetch(form.dataset.options, { method: 'POST', body, credentials: 'same-origin' });
        if (!res.ok) throw new Error(`options: ${res.status}`);
        const optionsJSON = await res.json();
        const answer =
          form.dataset.passkey === 'register'
            ? await lib.startRegistration({ optionsJSON })
            : await lib.startAuthentication({ optionsJSON });
        form.elements.response.value = JSON.stringify(answer);
        form.dataset.ready = 'yes';
        form.submit();
      } catch {
        if (error) error.hidden = false;
        if (button) button.disabled = false;
      }
    });
  }
})();
