// Entry of /agent: the agent console.
import { render } from 'preact';
import '../shared/base.css';
import '../shared/messages.css';
import './agent.css';
import { App } from './App';

const root = document.getElementById('app');
if (root) render(<App />, root);
