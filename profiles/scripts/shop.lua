-- Hooks for profiles/scripting.ron. Every function gets the user's own table first (kept for the
-- user's life), then the profile's arguments as strings; what it returns goes into `into`.

-- A cart that grows by one random item per iteration, as a JSON body: state across iterations.
function next_cart(u, item)
    u.cart = u.cart or {}
    table.insert(u.cart, tonumber(item))
    if #u.cart > 5 then
        table.remove(u.cart, 1)
    end
    return '{"items":[' .. table.concat(u.cart, ",") .. ']}'
end

-- The cheapest of the listed results ("id:price" pairs): a decision over several values.
function cheapest(u, listing)
    local best, best_price
    for id in string.gmatch(listing, '"id":(%d+)') do
        local price = (tonumber(id) * 37) % 100
        if best_price == nil or price < best_price then
            best, best_price = id, price
        end
    end
    return best
end

-- Whether to check out: every third iteration of this user.
function checkout_now(u)
    u.visits = (u.visits or 0) + 1
    return u.visits % 3 == 0
end
