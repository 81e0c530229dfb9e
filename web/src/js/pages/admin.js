// Admin: where platform admins go for pools, tokens and agents (the agents page), roles,
// approvals and activity. The page itself only needs the signed-in user (SWA admin route).
import { requireSession } from "../core/session.js";

await requireSession();
