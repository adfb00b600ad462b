// The tenant's service calendar (admins): its time zone, opening hours per weekday and holidays,
// read from and written to /v1/settings/calendar. The server checks everything; this page only
// turns "09:00-14:00, 15:00-18:00" into intervals and back, and points at the field at fault.
"use strict";

(() => {
  const { t, api, el, showError, when } = CEM;
  const $ = (id) => document.getElementById(id);
  const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
  const form = $("calendar-form");

  function spansText(spans) {
    return spans.map(([opens, closes]) => `${opens}-${closes}`).join(", ");
  }

  // "9:00-14:00, 15 – 18.30" → [["09:00", "14:00"], ["15:00", "18:30"]]; null if unreadable.
  function readSpans(text) {
    const parts = text.split(/[,;]/).map((part) => part.trim()).filter(Boolean);
    const spans = [];
    for (const part of parts) {
      const found = part.match(/^(\d{1,2})(?:[:.h](\d{2}))?h?\s*[-–—]\s*(\d{1,2})(?:[:.h](\d{2}))?h?$/);
      if (!found) return null;
      const pad = (h, m) => `${h.padStart(2, "0")}:${m || "00"}`;
      const span = [pad(found[1], found[2]), pad(found[3], found[4])];
      // 24-hour times, in order: "9-12, 1-5" (meant as the afternoon) is refused, not read as
      // open from 1 to 5 in the night.
      if (spans.length && span[0] < spans[spans.length - 1][1]) return null;
      spans.push(span);
    }
    return spans;
  }

  function fill(calendar) {
    $("cal-zone").value = calendar.time_zone;
    for (const day of WEEKDAYS) $(`cal-hours-${day}`).value = spansText(calendar.hours[day] || []);
    $("cal-holidays").value = calendar.holidays.join("\n");
    $("cal-meta").textContent = calendar.set_at
      ? `${t("calendar_set")} ${when(calendar.set_at)} · ${calendar.set_by}`
      : t("calendar_never_set");
  }

  function clearMarks() {
    for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  }

  // The input an error's path names: body.time_zone, body.hours.mon[0], body.holidays[2].
  function fieldOf(path) {
    const found = String(path || "").match(/^body\.(time_zone|hours\.([a-z]+)|holidays)/);
    if (!found) return null;
    if (found[2]) return $(`cal-hours-${found[2]}`);
    return found[1] === "time_zone" ? $("cal-zone") : $("cal-holidays");
  }

  function mark(input) {
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }

  async function load() {
    try {
      fill(await api("/v1/settings/calendar"));
    } catch (error) {
      showError($("cal-status"), error);
    }
  }

  form.addEventListener("submit", async (submitted) => {
    submitted.preventDefault();
    clearMarks();
    const hours = {};
    for (const day of WEEKDAYS) {
      const input = $(`cal-hours-${day}`);
      const spans = readSpans(input.value);
      if (spans === null) {
        mark(input);
        const said = `${t("hours_unreadable")} (${t(`weekday_${day}`)})`;
        return $("cal-status").replaceChildren(el("span", { class: "error", role: "alert" }, said));
      }
      hours[day] = spans;
    }
    const holidays = $("cal-holidays").value.split(/[\s,;]+/).filter(Boolean);
    const body = { time_zone: $("cal-zone").value.trim(), hours, holidays };
    $("cal-save").disabled = true;
    try {
      fill(await api("/v1/settings/calendar", { method: "PUT", body }));
      $("cal-status").textContent = t("calendar_saved");
    } catch (error) {
      showError($("cal-status"), error); // what is wrong, in the page's language
      const details = (error.body && error.body.error && error.body.error.details) || [];
      const input = details.map((d) => fieldOf(d.path)).find(Boolean);
      if (input) mark(input);
    } finally {
      $("cal-save").disabled = false;
    }
  });

  load();
})();
