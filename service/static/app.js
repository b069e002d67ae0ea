// The question page. Plain JS, no dependencies, no inline code: it runs under `default-src 'self'`.
// Every piece of data reaches the DOM as text (textContent / text nodes), never as HTML.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const els = {
    info: $("index-info"),
    form: $("ask-form"),
    question: $("question"),
    topK: $("top-k"),
    retriever: $("retriever"),
    reader: $("reader"),
    apiKeyRow: $("api-key-row"),
    apiKey: $("api-key"),
    status: $("status"),
    error: $("error"),
    results: $("results"),
    askView: $("ask-view"),
    docView: $("doc-view"),
    docTitle: $("doc-title"),
    docCitation: $("doc-citation"),
    docError: $("doc-error"),
    docText: $("doc-text"),
  };
  let inFlight = null;
  let docToken = 0;
  let infoNeedsKey = false;

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function describeError(status, body) {
    if (body && typeof body.detail === "string") return body.detail;
    if (body && Array.isArray(body.detail)) {
      return body.detail.map((d) => (d.field ? d.field + ": " + d.msg : d.msg)).join("; ");
    }
    return "The service answered with status " + status + ".";
  }

  async function api(path, options) {
    const opts = options || {};
    const headers = new Headers(opts.headers || {});
    headers.set("Accept", "application/json");
    if (els.apiKey.value) headers.set("X-API-Key", els.apiKey.value);
    const resp = await fetch(path, Object.assign({}, opts, { headers: headers }));
    let body = null;
    try {
      body = await resp.json();
    } catch (_) {
      body = null;
    }
    if (!resp.ok) throw new ApiError(resp.status, describeError(resp.status, body));
    return body;
  }

  // Build an element; string children become text nodes, so data is never parsed as HTML.
  function el(tag, attrs) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else node.setAttribute(k, v);
    }
    for (let i = 2; i < arguments.length; i++) node.append(arguments[i]);
    return node;
  }

  // The service's offsets count Unicode code points (Python strings); JS strings count UTF-16 units.
  function highlighted(text, start, end) {
    const chars = Array.from(text);
    const s = Math.max(0, Math.min(start, chars.length));
    const e = Math.max(s, Math.min(end, chars.length));
    const frag = document.createDocumentFragment();
    frag.append(chars.slice(0, s).join(""), el("mark", {}, chars.slice(s, e).join("")), chars.slice(e).join(""));
    return frag;
  }

  function docLink(docId, start, end) {
    return "#/documents/" + encodeURIComponent(docId) + "?start=" + start + "&end=" + end;
  }

  function citation(docId, start, end) {
    return docId + ", characters " + start + "–" + end;
  }

  // Where the source was published: title, journal and year, and its PubMed record, each only when the corpus gave
  // it (the API sends null otherwise). Returns the pieces to place, or an empty list.
  function sourceParts(c) {
    const parts = [];
    if (!c) return parts;
    if (c.title) parts.push(el("cite", { class: "source-title" }, c.title));
    const where = [c.journal, c.year].filter(Boolean).join(", ");
    if (where) parts.push(el("span", { class: "source-where" }, where));
    if (c.pmid) {
      const label = "PMID " + c.pmid;
      // Only a number makes a PubMed address; anything else is shown as text.
      parts.push(
        /^\d+$/.test(c.pmid)
          ? el("a", { class: "pmid", href: "https://pubmed.ncbi.nlm.nih.gov/" + c.pmid + "/", rel: "noopener noreferrer", target: "_blank" }, label)
          : el("span", { class: "pmid" }, label),
      );
    }
    return parts;
  }

  // The answer's source line, or nothing (an empty text node) when the corpus gave no title, journal or PMID.
  function sourceLine(c) {
    const parts = sourceParts(c);
    return parts.length ? withSeparators(el("p", { class: "source" }), parts) : "";
  }

  function withSeparators(node, parts) {
    parts.forEach((part, i) => {
      if (i) node.append(" · ");
      node.append(part);
    });
    return node;
  }

  function showError(node, message) {
    node.textContent = message;
    node.hidden = !message;
  }

  function renderAnswer(a) {
    return el(
      "li",
      { class: "answer" },
      el("p", { class: "answer-text" }, el("strong", {}, a.text)),
      el(
        "p",
        { class: "answer-meta" },
        el("span", { class: "score" }, "Score " + a.score.toFixed(2)),
        " · ",
        el("a", { class: "citation", href: docLink(a.doc_id, a.start, a.end) }, citation(a.doc_id, a.start, a.end)),
      ),
      sourceLine(a.citation),
      el("blockquote", { class: "passage" }, highlighted(a.passage.text, a.span_in_passage.start, a.span_in_passage.end)),
    );
  }

  function renderEvidence(passages, open) {
    const details = el("details", { class: "evidence" });
    details.append(el("summary", {}, "Evidence: " + passages.length + " passage" + (passages.length === 1 ? "" : "s")));
    if (!passages.length) {
      details.append(el("p", { class: "muted" }, "No passage was retrieved."));
    } else {
      const list = el("ol", { class: "evidence-list" });
      for (const p of passages) {
        list.append(
          el(
            "li",
            {},
            el(
              "p",
              { class: "answer-meta" },
              el("a", { href: docLink(p.doc_id, p.start, p.end) }, citation(p.doc_id, p.start, p.end)),
              " · score " + p.score.toFixed(3),
            ),
            el("p", { class: "passage" }, p.text),
          ),
        );
      }
      details.append(list);
    }
    details.open = open;
    return details;
  }

  function renderResults(data) {
    const parts = [];
    if (data.no_answer) {
      parts.push(
        el(
          "div",
          { class: "no-answer", id: "no-answer" },
          el("h2", {}, "No answer found"),
          el("p", {}, "Nothing in the abstracts answers this question with enough confidence. The closest evidence is below."),
        ),
      );
    } else {
      const n = data.answers.length;
      parts.push(el("h2", { id: "answers-heading" }, n === 1 ? "1 answer" : n + " answers"));
      const list = el("ol", { class: "answers", "aria-labelledby": "answers-heading" });
      for (const a of data.answers) list.append(renderAnswer(a));
      parts.push(list);
    }
    parts.push(renderEvidence(data.passages, data.no_answer));
    els.results.replaceChildren(...parts);
  }

  async function ask(event) {
    event.preventDefault();
    const question = els.question.value.trim();
    if (!question) {
      showError(els.error, "Type a question first.");
      els.question.focus();
      return;
    }
    const body = { question: question };
    if (els.topK.value.trim()) body.top_k = Number(els.topK.value);
    if (els.retriever.value) body.retriever = els.retriever.value;
    if (els.reader.value) body.reader = els.reader.value;

    if (inFlight) inFlight.abort();
    const controller = new AbortController();
    inFlight = controller;
    showError(els.error, "");
    els.status.textContent = "Searching the abstracts…";
    els.results.setAttribute("aria-busy", "true");
    try {
      const data = await api("/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      renderResults(data);
      if (infoNeedsKey) loadInfo();
      const n = data.answers.length;
      els.status.textContent = data.no_answer
        ? "No answer found."
        : (n === 1 ? "1 answer" : n + " answers") + " in " + Math.round(data.took_ms) + " ms.";
    } catch (err) {
      if (err.name === "AbortError") return;
      els.status.textContent = "";
      els.results.replaceChildren();
      if (err.status === 401) {
        els.apiKeyRow.hidden = false;
        els.apiKey.focus();
      }
      showError(els.error, err instanceof ApiError ? err.message : "The service could not be reached: " + err.message);
    } finally {
      if (inFlight === controller) {
        inFlight = null;
        els.results.removeAttribute("aria-busy");
      }
    }
  }

  async function showDocument(docId, params) {
    const token = ++docToken;
    els.askView.hidden = true;
    els.docView.hidden = false;
    els.docTitle.textContent = docId;
    els.docCitation.textContent = "Loading…";
    els.docText.replaceChildren();
    showError(els.docError, "");
    try {
      const doc = await api("/documents/" + encodeURIComponent(docId));
      if (token !== docToken) return;
      const start = Number.parseInt(params.get("start") || "", 10);
      const end = Number.parseInt(params.get("end") || "", 10);
      els.docTitle.textContent = doc.title || "Abstract " + doc.id;
      const meta = doc.meta || {};
      const source = sourceParts({ pmid: meta.pmid && String(meta.pmid), journal: meta.journal, year: meta.year });
      if (Number.isInteger(start) && Number.isInteger(end) && start >= 0 && end > start) {
        els.docCitation.replaceChildren();
        withSeparators(els.docCitation, [citation(doc.id, start, end), ...source]);
        els.docText.replaceChildren(highlighted(doc.text, start, end));
        const mark = els.docText.querySelector("mark");
        if (mark) mark.scrollIntoView({ block: "center" });
      } else {
        els.docCitation.replaceChildren();
        withSeparators(els.docCitation, [doc.id, ...source]);
        els.docText.textContent = doc.text;
      }
    } catch (err) {
      if (token !== docToken) return;
      els.docCitation.textContent = "";
      showError(els.docError, err instanceof ApiError ? err.message : "The service could not be reached.");
    }
    els.docTitle.focus();
  }

  function showAsk() {
    docToken++;
    els.docView.hidden = true;
    els.askView.hidden = false;
  }

  function route() {
    const m = /^#\/documents\/([^?]+)(?:\?(.*))?$/.exec(location.hash);
    if (m) {
      let docId;
      try {
        docId = decodeURIComponent(m[1]);
      } catch (_) {
        docId = m[1];
      }
      showDocument(docId, new URLSearchParams(m[2] || ""));
    } else {
      showAsk();
    }
  }

  function fillSelect(select, values) {
    select.length = 1; // keep "Service default"; loadInfo may run again once a key is given
    for (const v of values) select.append(el("option", { value: v }, v));
  }

  async function loadInfo() {
    try {
      const info = await api("/ready");
      infoNeedsKey = false;
      els.info.textContent =
        "Answering from " + info.corpus.n_documents + " abstracts (" + info.corpus.n_chunks + " passages) with " +
        info.model.name + ", index " + info.fingerprint + ".";
      fillSelect(els.retriever, info.retrievers);
      fillSelect(els.reader, info.readers);
      els.topK.placeholder = String(info.defaults.top_k);
      els.question.maxLength = info.defaults.question_max_chars;
      if (info.api_key_required) els.apiKeyRow.hidden = false;
    } catch (err) {
      if (err.status === 401) {
        // Everything but /health needs the key here, the index description too: ask for it, then load again.
        infoNeedsKey = true;
        els.apiKeyRow.hidden = false;
        els.info.textContent = "This service needs an API key: enter it below.";
      } else if (err.status === 503) {
        els.info.textContent = "Loading the index and models… " + err.message;
        setTimeout(loadInfo, 2000);
      } else {
        els.info.textContent = "The service is not reachable: " + err.message;
      }
    }
  }

  els.form.addEventListener("submit", ask);
  els.apiKey.addEventListener("change", () => {
    if (infoNeedsKey) loadInfo();
  });
  window.addEventListener("hashchange", route);
  route();
  loadInfo();
})();
