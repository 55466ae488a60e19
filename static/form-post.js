/*
 * dinhdanh: sends the page's pending form (#form-post) at once: a portal's response_mode=form_post response, or a
 * logout when nobody is signed in. Loaded as a same-origin file (the CSP allows no inline script); where script does
 * not run, the page's own button sends the same form.
 */
(function () {
  var form = document.getElementById('form-post');
  if (form) form.submit();
})();
