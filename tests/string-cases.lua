-- string-cases.lua - string.find, match, gmatch and gsub on patterns that cover the
-- Lua 5.1 syntax and its errors. Returns one line per case. t_runaway.sh runs it under
-- plain luajit (LuaJIT's own functions) and inside a processor (eddy's, which stop at
-- the deadline) and expects the same lines.
local cases = {
  {"find","hello world","o w"}, {"find","hello world","o",6}, {"find","hello","l+"},
  {"find","hello","xyz"}, {"find","hello",""}, {"find","hello","",10}, {"find","hello","",6},
  {"find","hello","l",-2}, {"find","a.b","." ,1,true}, {"find","a+b","+",1,true},
  {"find","hello","(l)(l)"}, {"find","hello","()ll()"}, {"find","  x","^%s*"},
  {"find","abc","^b"}, {"find","abc","c$"}, {"find","abc","b$"}, {"find","a$c","$c"},
  {"match","key = value","(%w+)%s*=%s*(%w+)"}, {"match","2024-01-15","(%d+)-(%d+)-(%d+)"},
  {"match","hello","h.-o"}, {"match","hello","h.*l"}, {"match","hello","h.-l"},
  {"match","THE (quick) fox","%((%a+)%)"}, {"match","f(a(b)c)d","%b()"},
  {"match","THE (quick) fox","%f[%a]%a+"}, {"match","hello world","%f[%w]%w+$"},
  {"match","abcabc","(abc)%1"}, {"match","x=1, y=2","y=(%d)"}, {"match","[test]","%[(.-)%]"},
  {"match","a-b","[a-c]+"}, {"match","a]b","[]a]+"}, {"match","a^b","[%^a]+"}, {"match","abc","[^b]+"},
  {"match","hello123","%a+"}, {"match","hello123","%d+"}, {"match","HeLLo","%u+"}, {"match","HeLLo","%l+"},
  {"match","a\0b","%z"}, {"match","tab\there","%c"}, {"match","x!y","%p"}, {"match","0xFF","%x+$"},
  {"match","hello","%W"}, {"match","  hi  ","^%s*(.-)%s*$"}, {"match","aaa","a-b"}, {"match","aaa","a?a?a?a"},
  {"match","abc","()"}, {"match","abc","b()"}, {"match","hello", "(h)(e)(l)(l)(o)"}, {"match","abc","a*"},
  {"match","", "a*"}, {"match","abc","c",-1}, {"match","abc","a",10}, {"match","-12.5e3","^[+-]?%d+%.?%d*[eE]?[+-]?%d*$"},
  {"gsub","hello world","o","0"}, {"gsub","hello world","(%w+)","<%1>"}, {"gsub","hello world","%w+","%0 %0",1},
  {"gsub","abc","","-"}, {"gsub","hello","l+",{ll="LL"}}, {"gsub","hello","(l)",function(x) return x:upper() end},
  {"gsub","hello","x","y"}, {"gsub","abc","%w","%%"}, {"gsub","abc","^a","X"}, {"gsub","aaa","^a","X"},
  {"gsub","a b c","%s",""}, {"gsub","hello world","(o)",false}, {"gsub","abc","b",{}}, {"gsub","$1,000","[$,]",""},
  {"gsub","one two","(%w+) (%w+)","%2 %1"}, {"gsub","abc",".",{a=1,b=true}}, {"gsub","x","x","%a"},
  {"gsub","hello","",""}, {"gsub","abc","b*","-"}, {"gsub","a.b.c","%.","/"}, {"gsub","abc","(b)",function() return nil end},
  {"gmatch","one two three","%a+"}, {"gmatch","k1=v1, k2=v2","(%w+)=(%w+)"}, {"gmatch","abc",""}, {"gmatch","abc","a*"},
  {"gmatch","a,b,,c","([^,]*)"}, {"gmatch","hello","()l"},
  {"find","hello","%"}, {"find","hello","[a"}, {"find","hello","(()"}, {"find","hello","%1"}, {"find","hello",")"},
  {"find","hello","%b"}, {"find","hello","%fx"}, {"gsub","hello","l","%2"}, {"gsub","hello","l",true},
  {"match","hello","(h)(%2)"}, {"find","a\0b\0c","\0c"}, {"find","a\0b","b",1,false}, {"match","x[y]z","[%]]"},
  {"match","aXb","%u"}, {"match","a.b","%."}, {"match","a%b","%%"}, {"find","hello","l",1,true},
}
local out = {}
local function ser(ok, ...)
  local t = { ok and "ok" or "err" }
  if not ok then local m = tostring((...)); t[2] = m:gsub("^.-:%d+: ", ""); return table.concat(t, " ") end
  for i = 1, select("#", ...) do t[#t+1] = string.format("%q", tostring((select(i, ...)))) end
  return table.concat(t, " ")
end
for i, c in ipairs(cases) do
  local f = c[1]
  local r
  if f == "gmatch" then
    r = ser(pcall(function() local acc = {} for a, b in string.gmatch(c[2], c[3]) do acc[#acc+1] = tostring(a) .. "|" .. tostring(b) end return table.concat(acc, ";") end))
  else
    r = ser(pcall(string[f], unpack(c, 2, 6)))
  end
  out[#out+1] = i .. " " .. f .. " " .. r
end
return table.concat(out, "\n")
