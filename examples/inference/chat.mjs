// An application calling a fabrik deployment with the official `openai` client: a chat
// completion, then the same question streamed with token usage. Uses FABRIK_ENDPOINT (default
// http://127.0.0.1:8080) and FABRIK_API_KEY (a key of a member of the deployment's project).
//
//   node examples/inference/chat.mjs [MODEL]      # MODEL: the deployment's name (default tiny)
import OpenAI from 'openai';

const endpoint = process.env.FABRIK_ENDPOINT ?? 'http://127.0.0.1:8080';
if (!process.env.FABRIK_API_KEY) {
  console.error('set FABRIK_API_KEY to a fabrik API key');
  process.exit(2);
}
const ai = new OpenAI({ baseURL: `${endpoint}/v1`, apiKey: process.env.FABRIK_API_KEY });
const model = process.argv[2] ?? 'tiny';
const messages = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: 'Say hello to the factory.' },
];

const models = await ai.models.list();
console.log('models this key may use:', models.data.map((m) => m.id).join(', ') || '(none)');

const answer = await ai.chat.completions.create({ model, messages, max_tokens: 24 });
console.log(`\nchat (${answer.usage?.prompt_tokens} prompt + ${answer.usage?.completion_tokens} completion tokens):`);
console.log(JSON.stringify(answer.choices[0]?.message.content));

process.stdout.write('\nstreamed: ');
const stream = await ai.chat.completions.create({
  model,
  messages,
  max_tokens: 24,
  stream: true,
  stream_options: { include_usage: true },
});
for await (const chunk of stream) {
  if (chunk.choices[0]?.delta?.content) process.stdout.write(chunk.choices[0].delta.content);
  if (chunk.usage) process.stdout.write(`\n(usage: ${JSON.stringify(chunk.usage)})\n`);
}
