// The admin's groups page: add and remove groups, and add users to them or take them out.
import type { AdminContext, Group, User } from "./admin-client.ts";
import { Actions, adminForm, clipped, field, maxChars, fillIds, ListArea, section, table, timeCell } from "./admin-ui.ts";
import { PRINCIPAL_ID_HELP, PRINCIPAL_ID_PATTERN } from "./admin-users.ts";
import { h } from "./dom.ts";

/** Mounts the groups page into `root`; returns its disposer. */
export function mountAdminGroups(root: HTMLElement, ctx: AdminContext): () => void {
  const { client } = ctx;
  const list = new ListArea(
    "groups",
    () => Promise.all([client.groups(), client.users()]),
    ([groups, users]) => render(groups, users),
  );
  const actions = new Actions(() => void list.reload());

  const id = maxChars(h("input", { name: "id", type: "text", required: true, pattern: PRINCIPAL_ID_PATTERN, autocomplete: "off", spellcheck: "false" }), 63);
  const name = maxChars(h("input", { name: "name", type: "text", autocomplete: "off" }), 200);
  const addGroup = adminForm("Add a group", "Add group", [field("Id", id, PRINCIPAL_ID_HELP), field("Name", name)], async () => {
    const group = await client.addGroup({ id: id.value.trim(), ...(name.value.trim() ? { name: name.value.trim() } : {}) });
    addGroup.form.reset();
    void list.reload();
    return `Group ${group.id} added.`;
  });

  const memberGroup = h("select", { name: "group", required: true });
  const memberUser = h("select", { name: "user", required: true });
  const addMember = adminForm("Add a member", "Add to group", [field("Group", memberGroup), field("User", memberUser)], async () => {
    await client.addMember(memberGroup.value, memberUser.value);
    void list.reload();
    return `${memberUser.value} is in ${memberGroup.value}.`;
  });

  function render(groups: Group[], users: User[]): Node {
    fillIds(memberGroup, groups.map((g) => g.id), "no groups yet");
    fillIds(memberUser, users.map((u) => u.id), "no users yet");
    return table(
      "Groups",
      ["Id", "Name", "Members", "Created", "Actions"],
      groups.map((g) => [
        clipped(g.id, "code"),
        clipped(g.name),
        g.members.length === 0
          ? h("span", { class: "muted" }, "none")
          : h(
              "ul",
              { class: "chips", "aria-label": `Members of ${g.id}` },
              ...g.members.map((m) =>
                h("li", { class: "chip" }, m, actions.button(`Remove ${m} from ${g.id}`, "×", () => client.removeMember(g.id, m))),
              ),
            ),
        timeCell(g.created_at),
        actions.button(`Remove group ${g.id}`, "Remove", () => client.removeGroup(g.id), {
          danger: true,
          confirm: `Remove group ${g.id} with its memberships and grants?`,
        }),
      ]),
      "No groups yet.",
    );
  }

  root.replaceChildren(addGroup.form, addMember.form, section("Groups", actions.region, list.element));
  void list.reload();
  return () => list.stop();
}
