-- A Lua workflow file: `pardag run examples/flows/parallel_demo.lua`.
-- The file is read in a sandbox (no os, io or require); it only has to set the global
-- table `workflow`. Steps run in dependency order; independent ones run at the same time
-- (steps from a Lua table have no order of their own: pardag takes them sorted by id).

local function sleeper(name)
  -- Each task takes about a second; the four run in parallel with max_concurrency >= 4.
  return {
    depends_on = {"init"},
    language = "shell",
    -- INPUT_INIT holds init's output as JSON; a JSON-object line of stdout is the output.
    code = [[sleep 1; echo "{\"task\": \"]] .. name .. [[\", \"from\": $INPUT_INIT}"]],
  }
end

workflow = {
  name = "parallel_demo",
  description = "Four one-second shell tasks in parallel between a Lua and a Python step.",
  execution = { max_concurrency = 4 },
  steps = {
    init = { language = "lua", code = [[ function run() return "initialized" end ]] },
    task_a = sleeper("a"),
    task_b = sleeper("b"),
    task_c = sleeper("c"),
    task_d = sleeper("d"),
    merge = {
      depends_on = {"task_a", "task_b", "task_c", "task_d"},
      language = "python",
      code = [[
def run(inputs):
    return {"tasks": sorted(out["task"] for out in inputs.values()),
            "from": sorted({out["from"] for out in inputs.values()})}
]],
    },
  },
}
