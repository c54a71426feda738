// What both pages share: element lookup and building (text only, never HTML), and JSON from this service.
"use strict";

const $ = (id) => document.getElementById(id);

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined) node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);  // strings become text: no HTML injection
  return node;
}

async function getJSON(url) {
  const response = await fetch(url);
  const body = await response.json();
  if (response.status === 401) {
    showSignIn();
    throw new Error("sign in to see the footage");
  }
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}

// A service reachable beyond this machine asks for a token once; it answers with a cookie only this site
// sends (HttpOnly, SameSite=Strict), and the page starts again signed in.
function showSignIn() {
  if ($("sign-in")) return;
  const token = element("input", {id: "token", type: "password", autocomplete: "current-password", required: "",
                                  placeholder: "access token", "aria-label": "access token"});
  const problem = element("p", {id: "sign-in-problem", role: "alert"});
  const form = element("form", {id: "sign-in", class: "sign-in"},
    element("h2", {}, "Sign in"), element("p", {}, "This service needs an access token."),
    token, element("button", {type: "submit"}, "Sign in"), problem);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const response = await fetch("/api/session", {method: "POST", headers: {"Content-Type": "application/json"},
                                                  body: JSON.stringify({token: token.value})});
    if (response.ok) {
      location.reload();
    } else {
      problem.textContent = (await response.json()).detail || "that token is not valid here";
    }
  });
  document.querySelector("main").prepend(form);
  token.focus();
}

// Health names the catalogue only to those signed in (or on an open service): otherwise offer the sign-in
// before the first search.
window.addEventListener("DOMContentLoaded", async () => {
  try {
    const health = await (await fetch("/api/health")).json();
    if (!("videos" in health)) showSignIn();
  } catch (error) {
    // the page's own requests say what is wrong
  }
});
