// A task's stdout or stderr, read from its sandbox through
// `/v1/tasks/{id}/files/{file}`: the last 64 KiB, then what is appended.

import { html, useEffect, useRef, useState } from './vendor/htm-preact.js';
import { api } from './api.js';
import { useStore } from './live.js';

const POLL_MS = 1000;
const KEEP_CHARS = 1 << 20;

export function TaskLog({ task, file }) {
  const { model } = useStore();
  const [text, setText] = useState('');
  const [size, setSize] = useState(null);
  const [error, setError] = useState(null);
  const [follow, setFollow] = useState(true);
  const pre = useRef(null);
  useEffect(() => {
    let stopped = false;
    let next = null;
    setText('');
    const read = async () => {
      try {
        const query = next === null ? '' : `?offset=${next}`;
        const answer = await api('GET', `/v1/tasks/${encodeURIComponent(task)}/files/${file}${query}`);
        if (stopped) return;
        setSize(answer.size);
        setError(null);
        if (answer.size < answer.offset) {
          // The file was truncated (rotated): start again from its tail.
          next = null;
          setText('');
          return;
        }
        let data = answer.data;
        // The tail starts mid-line (perhaps mid-character): show whole lines.
        if (next === null && answer.offset > 0) data = data.slice(data.indexOf('\n') + 1);
        next = answer.next;
        if (data) setText((old) => (old + data).slice(-KEEP_CHARS));
      } catch (e) {
        if (!stopped) setError(e.message);
      }
    };
    read();
    const timer = setInterval(read, POLL_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [task, file]);
  useEffect(() => {
    if (follow && pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [text, follow]);
  const owner = model.tasks[task]?.app;
  const other = file === 'stdout' ? 'stderr' : 'stdout';
  return html`<section class="log">
    <div class="toolbar">
      <h1>${file} of <code>${task}</code></h1>
      ${owner && html`<a href=${`#/apps${owner}`}>${owner}</a>`}
      <a href=${`#/tasks/${encodeURIComponent(task)}/${other}`}>${other}</a>
      <label><input type="checkbox" checked=${follow} onChange=${(e) => setFollow(e.target.checked)} /> follow</label>
      <span class="muted">${size === null ? '' : `${size} bytes`}</span>
    </div>
    ${error && html`<div class="error" role="alert">${error}</div>`}
    <pre id="log" ref=${pre}>${text}</pre>
  </section>`;
}
