/*
 * supportbot chat widget: one script tag puts a chat bubble on any page. No build step.
 *
 *   <script src="https://support.example.com/widget.js" data-key="sb_publishable_..." defer></script>
 *
 * Attributes: data-key (a publishable key, required), data-api (the HTTP API's origin; default:
 * where this script came from), data-collection (the knowledge base; default: the key's),
 * data-title (the panel's title), data-lang ("en" or "ko"; default: the browser's language),
 * data-identity-token (the signed-in customer, as the company's server vouches for them; also
 * settable later: window.supportbotWidget.setIdentityToken(token), e.g. after sign-in). Answers
 * stream in as they are written, with their sources as links; an account action's answer shows
 * the records it rests on, and its choices (the customer's orders, yes and no) as buttons that
 * send the choice as the next message; each answer can be rated; "Talk to a person" hands the conversation to the support team,
 * whose replies appear live. The conversation survives page loads (its id is kept in
 * localStorage). Everything is reachable by keyboard: Enter sends, Shift+Enter starts a new line,
 * Escape closes the panel.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__supportbotWidget) return;
  window.__supportbotWidget = true;
  var key = script.getAttribute("data-key") || "";
  var api = (script.getAttribute("data-api") || new URL(script.src, location.href).origin).replace(/\/$/, "");
  var collection = script.getAttribute("data-collection") || "";
  // Who the visitor is, signed by the company's server (account actions); empty: anonymous.
  var identityToken = script.getAttribute("data-identity-token") || "";
  window.supportbotWidget = {
    setIdentityToken: function (token) { identityToken = token || ""; }
  };
  // The widget's own words in English and Korean; the answers come in the customer's language anyway.
  var STRINGS = {
    en: {
      title: "Questions? Ask us", bubble: "Chat with us", close: "Close the chat", conversation: "Conversation",
      person: "Talk to a person", question: "Your question", placeholder: "Type your question", send: "Send",
      helped: "This answer helped", unhelpful: "This answer did not help", team: "Support team",
      sorry: "Sorry about that. A person from our support team will join you here.",
      joining: "A person from our support team will join this conversation shortly.",
      failed: "Something went wrong ({status}). Please try again.", reason: "asked from the chat widget",
      yes: "Yes", no: "No"
    },
    ko: {
      title: "궁금한 점을 물어보세요", bubble: "채팅 상담", close: "채팅 닫기", conversation: "대화",
      person: "상담원 연결", question: "질문", placeholder: "질문을 입력하세요", send: "보내기",
      helped: "도움이 됐어요", unhelpful: "도움이 안 됐어요", team: "상담팀",
      sorry: "불편을 드려 죄송합니다. 상담원이 곧 이 대화에 참여합니다.",
      joining: "상담원이 곧 이 대화에 참여합니다.",
      failed: "문제가 생겼습니다 ({status}). 다시 시도해 주세요.", reason: "채팅 위젯에서 상담원 연결 요청",
      yes: "예", no: "아니요"
    }
  };
  var language = (script.getAttribute("data-lang") || navigator.language || "en").slice(0, 2).toLowerCase();
  var words = STRINGS[language] || STRINGS.en;
  var title = script.getAttribute("data-title") || words.title;
  var storageKey = "supportbot:" + api + ":" + key.slice(-12) + ":session";
  var sessionId = localStorage.getItem(storageKey) || "";
  var busy = false;

  var host = document.createElement("div");
  host.setAttribute("data-supportbot", "");
  var root = host.attachShadow({ mode: "open" });
  root.innerHTML =
    "<style>" +
    ":host{all:initial}*{box-sizing:border-box;font:14px/1.45 system-ui,-apple-system,'Segoe UI','Apple SD Gothic Neo'," +
    "'Malgun Gothic','Noto Sans KR','NanumGothic',sans-serif;word-break:keep-all}" +
    ".bubble{position:fixed;right:20px;bottom:20px;z-index:2147483000;border:0;border-radius:28px;padding:14px 20px;" +
    "background:#1f4fd1;color:#fff;font-weight:600;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25)}" +
    ".panel{position:fixed;right:20px;bottom:84px;z-index:2147483000;width:min(380px,calc(100vw - 40px));" +
    "height:min(560px,calc(100vh - 110px));display:flex;flex-direction:column;background:#fff;color:#1b1b1b;" +
    "border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.3);overflow:hidden}" +
    ".panel[hidden]{display:none}header{display:flex;align-items:center;justify-content:space-between;" +
    "padding:12px 14px;background:#1f4fd1;color:#fff}header h2{margin:0;font-size:15px;font-weight:600}" +
    "header button{background:none;border:0;color:#fff;font-size:20px;cursor:pointer;padding:2px 8px}" +
    ".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;background:#f5f6f8}" +
    ".msg{max-width:88%;padding:8px 11px;border-radius:10px;white-space:pre-wrap;word-wrap:break-word}" +
    ".customer{align-self:flex-end;background:#1f4fd1;color:#fff}.assistant,.agent{align-self:flex-start;background:#fff;" +
    "border:1px solid #dde1e8}.agent{border-color:#2e8b57}.note{align-self:center;color:#555;font-size:13px;text-align:center}" +
    ".who{display:block;font-size:12px;color:#2e8b57;font-weight:600}.sources{margin-top:6px;font-size:13px}" +
    ".sources a{color:#1f4fd1;display:block}.rate{margin-top:4px}.rate button{background:none;border:1px solid #dde1e8;" +
    "border-radius:6px;cursor:pointer;margin-right:4px;padding:1px 7px}.rate button[aria-pressed=true]{background:#e6edff}" +
    ".options{margin-top:6px;display:flex;flex-wrap:wrap;gap:6px}.options button{border:1px solid #1f4fd1;border-radius:14px;" +
    "background:#fff;color:#1f4fd1;cursor:pointer;padding:3px 11px}.options button:disabled{opacity:.5;cursor:default}" +
    "form{display:flex;gap:6px;padding:10px;border-top:1px solid #dde1e8}textarea{flex:1;resize:none;height:40px;" +
    "padding:8px;border:1px solid #c5cad3;border-radius:8px}form button,.person{border:0;border-radius:8px;" +
    "background:#1f4fd1;color:#fff;padding:0 14px;cursor:pointer}.person{margin:0 10px 10px;padding:8px;" +
    "background:#fff;color:#1f4fd1;border:1px solid #1f4fd1}button:focus-visible,textarea:focus-visible," +
    "a:focus-visible{outline:3px solid #ffb020;outline-offset:2px}" +
    "</style>" +
    '<button class="bubble" type="button" aria-haspopup="dialog" aria-expanded="false"></button>' +
    '<section class="panel" role="dialog" aria-labelledby="sb-title" hidden>' +
    '<header><h2 id="sb-title"></h2><button type="button" class="close">\u00d7</button></header>' +
    '<div class="log" role="log" aria-live="polite"></div>' +
    '<button type="button" class="person"></button>' +
    '<form><textarea></textarea><button type="submit"></button></form></section>';
  document.body.appendChild(host);
  host.setAttribute("lang", STRINGS[language] ? language : "en");

  var bubble = root.querySelector(".bubble"), panel = root.querySelector(".panel");
  var log = root.querySelector(".log"), form = root.querySelector("form");
  var input = root.querySelector("textarea"), person = root.querySelector(".person");
  root.getElementById("sb-title").textContent = title;
  bubble.textContent = words.bubble;
  root.querySelector(".close").setAttribute("aria-label", words.close);
  log.setAttribute("aria-label", words.conversation);
  person.textContent = words.person;
  input.setAttribute("aria-label", words.question);
  input.setAttribute("placeholder", words.placeholder);
  form.querySelector("button").textContent = words.send;

  function headers(json) {
    var h = { Authorization: "Bearer " + key };
    if (json) h["Content-Type"] = "application/json";
    return h;
  }

  function errorText(response, body) {
    var message = body && body.error && body.error.message;
    return message || words.failed.replace("{status}", response.status);
  }

  function call(method, path, body) {
    return fetch(api + path, { method: method, headers: headers(body !== undefined), body: body === undefined ? undefined : JSON.stringify(body) })
      .then(function (response) {
        return response.json().catch(function () { return null; }).then(function (json) {
          if (!response.ok) throw new Error(errorText(response, json));
          return json;
        });
      });
  }

  // Server-Sent Events over fetch (EventSource cannot send the key): calls onEvent(kind, data).
  function stream(method, path, body, onEvent) {
    return fetch(api + path, { method: method, headers: headers(body !== undefined), body: body === undefined ? undefined : JSON.stringify(body) })
      .then(function (response) {
        if (!response.ok) {
          return response.json().catch(function () { return null; }).then(function (json) { throw new Error(errorText(response, json)); });
        }
        var reader = response.body.getReader(), decoder = new TextDecoder(), buffer = "";
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) return;
            buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n/g, "\n");
            var blocks = buffer.split("\n\n");
            buffer = blocks.pop();
            blocks.forEach(function (block) {
              var kind = "message", data = "";
              block.split("\n").forEach(function (line) {
                if (line.indexOf("event: ") === 0) kind = line.slice(7);
                else if (line.indexOf("data: ") === 0) data += line.slice(6);
              });
              if (data) onEvent(kind, JSON.parse(data));
            });
            return pump();
          });
        }
        return pump();
      });
  }

  function add(kind, text, who) {
    var item = document.createElement("div");
    item.className = "msg " + kind;
    if (who) {
      var label = document.createElement("span");
      label.className = "who";
      label.textContent = who;
      item.appendChild(label);
    }
    var body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    item.appendChild(body);
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }

  function showSources(item, citations) {
    if (!citations || !citations.length) return;
    var list = document.createElement("div");
    list.className = "sources";
    citations.slice().sort(function (a, b) { return a.index - b.index; }).forEach(function (c) {
      var link = document.createElement(c.url && /^https?:/.test(c.url) ? "a" : "span");
      link.textContent = "[" + c.index + "] " + (c.title || c.documentId);
      if (link.tagName === "A") { link.href = c.url; link.target = "_blank"; link.rel = "noopener noreferrer"; }
      list.appendChild(link);
    });
    item.appendChild(list);
  }

  // The account records an action's answer rests on ("[order L-104233]"), listed as sources are.
  function showRecords(item, records) {
    if (!records || !records.length) return;
    var list = document.createElement("div");
    list.className = "sources";
    records.forEach(function (r) {
      var line = document.createElement("span");
      line.style.display = "block";
      line.textContent = r.marker || (r.record + " " + r.recordId);
      list.appendChild(line);
    });
    item.appendChild(list);
  }

  // An action's choices as buttons; one pressed is sent as the next message. Any other message
  // sent meanwhile retires them (the question they answered is gone).
  function showOptions(item, action) {
    var options = action.options || [];
    // A confirmation comes without options: Yes and No, sent as "yes" and "no" (read in any language).
    if (!options.length && action.kind === "ACTION_REPLY_KIND_CONFIRM") {
      options = [{ value: "yes", label: words.yes }, { value: "no", label: words.no }];
    }
    if (!options.length) return;
    var row = document.createElement("div");
    row.className = "options";
    options.forEach(function (option) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = option.label || option.value;
      button.addEventListener("click", function () { ask(option.value, option.label || option.value); });
      row.appendChild(button);
    });
    item.appendChild(row);
  }

  function retireOptions() {
    root.querySelectorAll(".options button").forEach(function (b) { b.disabled = true; });
  }

  function showRating(item, turnId) {
    var rate = document.createElement("div");
    rate.className = "rate";
    [[1, "\ud83d\udc4d", words.helped], [-1, "\ud83d\udc4e", words.unhelpful]].forEach(function (choice) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = choice[1];
      button.setAttribute("aria-label", choice[2]);
      button.setAttribute("aria-pressed", "false");
      button.addEventListener("click", function () {
        call("POST", "/v1/sessions/" + sessionId + "/feedback", { turnId: turnId, rating: choice[0] }).then(function (reply) {
          rate.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
          button.setAttribute("aria-pressed", "true");
          if (reply && reply.handoff) { add("note", words.sorry); watch(); }
        }).catch(function (error) { add("note", error.message); });
      });
      rate.appendChild(button);
    });
    item.appendChild(rate);
  }

  function remember(id) {
    sessionId = id;
    localStorage.setItem(storageKey, id);
  }

  var watching = false;
  // Live replies from the support team once a person has the conversation.
  function watch() {
    if (watching || !sessionId) return;
    watching = true;
    var seen = {};
    root.querySelectorAll("[data-turn]").forEach(function (el) { seen[el.getAttribute("data-turn")] = true; });
    stream("GET", "/v1/sessions/" + sessionId + ":watch", undefined, function (kind, data) {
      var turn = data.turn;
      if (kind === "turn" && turn && turn.role === "ROLE_AGENT" && !seen[turn.turnId]) {
        seen[turn.turnId] = true;
        add("agent", turn.content, words.team).setAttribute("data-turn", turn.turnId);
      }
    }).catch(function () {}).then(function () { watching = false; });
  }

  function ask(question, shown) {
    if (busy || !question.trim()) return;
    busy = true;
    retireOptions();
    add("customer", shown || question);
    var answer = add("assistant", "\u2026"), text = answer.querySelector(".text"), started = false;
    var request = { sessionId: sessionId, message: question, collection: collection, channel: "widget" };
    if (identityToken) request.identityToken = identityToken;
    stream("POST", "/v1/chat", request, function (kind, data) {
      if (kind === "session") remember(data.session.sessionId);
      else if (kind === "delta") { text.textContent = (started ? text.textContent : "") + data.delta.text; started = true; log.scrollTop = log.scrollHeight; }
      else if (kind === "result") {
        var result = data.result;
        if (result.answer) text.textContent = result.answer;
        answer.setAttribute("data-turn", result.turnId);
        if (result.action) {
          // A case question with a policy question: the articles and then the records, one
          // numbered list (the gateway numbers the records after the articles).
          if (result.answerPath === "ANSWER_PATH_ACTION") showRecords(answer, result.action.records);
          else showSources(answer, result.citations);
          showOptions(answer, result.action);
        } else showSources(answer, result.citations);
        if (result.answer) showRating(answer, result.turnId);
        log.scrollTop = log.scrollHeight;  // the records and choices below the answer in view
        if (result.handoff) watch();
      } else if (kind === "error") text.textContent = data.error.message;
    }).catch(function (error) {
      text.textContent = error.message;
    }).then(function () { busy = false; input.focus(); });
  }

  function restore() {
    if (!sessionId) return Promise.resolve();
    return call("GET", "/v1/sessions/" + sessionId).then(function (reply) {
      var session = reply.session;
      if (session.status === "SESSION_STATUS_CLOSED") { localStorage.removeItem(storageKey); sessionId = ""; return; }
      var last = null;
      session.turns.forEach(function (turn) {
        var kind = turn.role === "ROLE_CUSTOMER" ? "customer" : turn.role === "ROLE_AGENT" ? "agent" : "assistant";
        var item = add(kind, turn.content, kind === "agent" ? words.team : "");
        item.setAttribute("data-turn", turn.turnId);
        if (kind === "assistant") showSources(item, turn.citations);
        last = item;
      });
      // An action still waiting for the answer to the last question gets its buttons again.
      if (session.waitingAction && last) showOptions(last, session.waitingAction);
      if (session.status === "SESSION_STATUS_WAITING_FOR_AGENT" || session.status === "SESSION_STATUS_WITH_AGENT") watch();
    }).catch(function () { localStorage.removeItem(storageKey); sessionId = ""; });
  }

  function open(show) {
    panel.hidden = !show;
    bubble.setAttribute("aria-expanded", String(show));
    if (show) input.focus(); else bubble.focus();
  }

  bubble.addEventListener("click", function () { open(panel.hidden); });
  root.querySelector(".close").addEventListener("click", function () { open(false); });
  panel.addEventListener("keydown", function (event) { if (event.key === "Escape") open(false); });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var question = input.value;
    input.value = "";
    ask(question);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });
  person.addEventListener("click", function () {
    var ready = sessionId ? Promise.resolve() : call("POST", "/v1/sessions", { collection: collection, channel: "widget" })
      .then(function (reply) { remember(reply.session.sessionId); });
    ready.then(function () { return call("POST", "/v1/sessions/" + sessionId + ":handoff", { reason: words.reason }); })
      .then(function () { add("note", words.joining); watch(); })
      .catch(function (error) { add("note", error.message); });
  });
  restore();
})();
