/* lb_geo.c - ctx.geo: great-circle distance and point-in-polygon in C, so the geofence
 * rules can test every report against every fence without Lua doing trigonometry. */
#include <math.h>

#include <lauxlib.h>

#include "bindings.h"

/* The mean Earth radius (IUGG R1); against the WGS84 ellipsoid the sphere is off by
 * less than 0.5% on every path, which is what fences need. */
#define EARTH_RADIUS_M 6371008.8

static double radians(double deg)
{
    return deg * (M_PI / 180.0);
}

double lb_geo_haversine(double lat1, double lon1, double lat2, double lon2)
{
    double dlat = radians(lat2 - lat1), dlon = radians(lon2 - lon1);
    double a = sin(dlat / 2) * sin(dlat / 2) +
               cos(radians(lat1)) * cos(radians(lat2)) * sin(dlon / 2) * sin(dlon / 2);
    if (a > 1)      /* rounding at antipodes */
        a = 1;
    return 2 * EARTH_RADIUS_M * asin(sqrt(a));
}

static double check_coord(lua_State *L, int arg, double limit)
{
    double v = luaL_checknumber(L, arg);
    if (!(v >= -limit && v <= limit))
        luaL_argerror(L, arg, limit == 90 ? "latitude must be within [-90, 90]"
                                          : "longitude must be within [-180, 180]");
    return v;
}

/* ctx.geo.haversine(lat1, lon1, lat2, lon2) -> metres */
static int geo_haversine(lua_State *L)
{
    double lat1 = check_coord(L, 1, 90), lon1 = check_coord(L, 2, 180);
    double lat2 = check_coord(L, 3, 90), lon2 = check_coord(L, 4, 180);
    lua_pushnumber(L, lb_geo_haversine(lat1, lon1, lat2, lon2));
    return 1;
}

/* Vertex i of a polygon given as { {lat, lon}, ... } or { {lat=..., lon=...}, ... }. */
static void vertex(lua_State *L, int poly, int i, double *lat, double *lon)
{
    lua_rawgeti(L, poly, i);
    if (!lua_istable(L, -1))
        luaL_error(L, "ctx.geo.in_polygon: vertex %d must be {lat, lon}", i);
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    if (lua_isnil(L, -2)) {
        lua_pop(L, 2);
        lua_getfield(L, -1, "lat");
        lua_getfield(L, -2, "lon");
    }
    if (!lua_isnumber(L, -2) || !lua_isnumber(L, -1))
        luaL_error(L, "ctx.geo.in_polygon: vertex %d must be {lat, lon} numbers", i);
    *lat = lua_tonumber(L, -2);
    *lon = lua_tonumber(L, -1);
    lua_pop(L, 3);
}

/* ctx.geo.in_polygon(lat, lon, polygon) -> boolean. Even-odd ray casting on the plane
 * of lat/lon degrees: right for fences of city scale that do not cross the
 * antimeridian (a fence that does can be given as two polygons). */
static int geo_in_polygon(lua_State *L)
{
    double lat = check_coord(L, 1, 90), lon = check_coord(L, 2, 180);
    luaL_checktype(L, 3, LUA_TTABLE);
    int n = (int)lua_objlen(L, 3);
    if (n < 3)
        return luaL_argerror(L, 3, "a polygon needs at least 3 vertices");
    int inside = 0;
    double plat, plon;
    vertex(L, 3, n, &plat, &plon);
    for (int i = 1; i <= n; i++) {
        double vlat, vlon;
        vertex(L, 3, i, &vlat, &vlon);
        if ((vlat > lat) != (plat > lat) &&
            lon < (plon - vlon) * (lat - vlat) / (plat - vlat) + vlon)
            inside = !inside;
        plat = vlat;
        plon = vlon;
    }
    lua_pushboolean(L, inside);
    return 1;
}

static const luaL_Reg geo_funcs[] = {
    { "haversine", geo_haversine },
    { "in_polygon", geo_in_polygon },
    { NULL, NULL },
};

int lb_geo_open(lua_State *L)
{
    lua_createtable(L, 0, 2);
    luaL_register(L, NULL, geo_funcs);
    return 1;
}
