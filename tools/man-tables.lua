-- man-tables.lua - pandoc filter for the man pages (tools/man.sh): each table becomes a
-- definition list (first column the term, every other column "Header: text" under it),
-- since tbl cannot fit docs/config.md's wide tables in 80 columns.
local function inlines(cell)
  local out = pandoc.List()
  for _, b in ipairs(cell.contents) do
    if b.content then
      if #out > 0 then out:insert(pandoc.Space()) end
      out:extend(b.content)
    end
  end
  return out
end

function Table(tbl)
  local heads = {}
  local hrow = tbl.head.rows[1]
  if hrow then
    for i, c in ipairs(hrow.cells) do heads[i] = pandoc.utils.stringify(c.contents) end
  end
  local items = pandoc.List()
  for _, body in ipairs(tbl.bodies) do
    for _, row in ipairs(body.body) do
      local term = inlines(row.cells[1])
      local defs = pandoc.List()
      for i = 2, #row.cells do
        local text = inlines(row.cells[i])
        if #text > 0 then
          local para = pandoc.List()
          if heads[i] and heads[i] ~= "" then
            para:insert(pandoc.Emph({pandoc.Str(heads[i] .. ":")}))
            para:insert(pandoc.Space())
          end
          para:extend(text)
          defs:insert(pandoc.Para(para))
        end
      end
      items:insert({term, {defs}})
    end
  end
  return pandoc.DefinitionList(items)
end
