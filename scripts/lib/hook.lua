-- The scripted hook of scripts/bench-script-hook.sh: a counter in the user's own table, returned as
-- the next request's path segment.
function counter(u)
    local n = (u.n or 0) + 1
    u.n = n
    return n
end
