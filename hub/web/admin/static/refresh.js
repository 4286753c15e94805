// The console's optional refresh: off until the operator turns it on (remembered in this
// browser), and held while they are typing, selecting rows or reading a focused control.
(function () {
  var box = document.getElementById('auto-refresh');
  if (!box) { return; }
  var key = 'hub.console.auto-refresh';
  var seconds = parseInt(box.getAttribute('data-seconds'), 10) || 10;
  var timer = null;
  function busy() {
    var active = document.activeElement;
    if (active && active !== box && /^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(active.tagName)) { return true; }
    return Array.prototype.some.call(document.querySelectorAll('input[name=ids]'), function (c) { return c.checked; });
  }
  function schedule() {
    clearTimeout(timer);
    if (!box.checked) { return; }
    timer = setTimeout(function () { if (busy()) { schedule(); } else { window.location.reload(); } }, seconds * 1000);
  }
  try { box.checked = window.localStorage.getItem(key) === 'on'; } catch (e) { box.checked = false; }
  box.addEventListener('change', function () {
    try { window.localStorage.setItem(key, box.checked ? 'on' : 'off'); } catch (e) { /* private mode */ }
    schedule();
  });
  schedule();
})();
