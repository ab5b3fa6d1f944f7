// One streamed chat turn against supportbot's gateway, using only proto/supportbot/v1/*.proto.
//
//   node chat.mjs "How do I reset my password?"
//
// Environment: SUPPORTBOT_GATEWAY_ADDRESS (default 127.0.0.1:50051), SUPPORTBOT_API_KEY.
import path from "node:path";
import { fileURLToPath } from "node:url";
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const protoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../proto");
const definition = protoLoader.loadSync("supportbot/v1/chat.proto", {
  includeDirs: [protoRoot],
  keepCase: true,
  enums: String,
  defaults: true,
});
const { ChatService } = grpc.loadPackageDefinition(definition).supportbot.v1;

const address = process.env.SUPPORTBOT_GATEWAY_ADDRESS ?? "127.0.0.1:50051";
const client = new ChatService(address, grpc.credentials.createInsecure());
const metadata = new grpc.Metadata();
if (process.env.SUPPORTBOT_API_KEY) metadata.set("x-api-key", process.env.SUPPORTBOT_API_KEY);

const question = process.argv[2] ?? "How do I reset my password?";
const call = client.Chat({ message: question, channel: "node-example" }, metadata);
let result = null;
call.on("data", (response) => {
  if (response.delta) process.stdout.write(response.delta.text);
  if (response.result) result = response.result;
});
call.on("error", (error) => {
  console.error(`\n${grpc.status[error.code]}: ${error.details}`);
  process.exit(1);
});
call.on("end", () => {
  process.stdout.write("\n");
  for (const citation of result?.citations ?? []) console.log(`[${citation.index}] ${citation.title} ${citation.url}`);
  console.log(JSON.stringify({ turn_id: result?.turn_id, grounded: result?.grounded, finish_reason: result?.finish_reason }));
});
