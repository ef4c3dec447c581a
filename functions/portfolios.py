"""Portfolios, positions and valuation from current quotes."""

import azure.functions as func

from shared.http import RequestContext, route
from shared.http.schemas import PageQuery
from shared.schemas.portfolios import (
    PortfolioCreate, PortfolioPage, PortfolioPublic, PortfolioUpdate, PositionCreate, PositionPage, PositionPublic,
    PositionUpdate,
)
from shared.schemas.valuations import PortfolioValuation

bp = func.Blueprint()
TAGS = ("portfolios",)


def _portfolio(ctx: RequestContext) -> PortfolioPublic:
    return ctx.services.portfolios.get_portfolio(ctx.user.id, ctx.request.path_params["portfolio_id"])


def _position(ctx: RequestContext) -> PositionPublic:
    params = ctx.request.path_params
    return ctx.services.portfolios.get_position(ctx.user.id, params["portfolio_id"], params["position_id"])


@route(bp, "v1/portfolios", query=PageQuery, response=PortfolioPage, tags=TAGS, errors=(400, 401, 422, 503))
async def list_portfolios(req, ctx: RequestContext) -> PortfolioPage:
    """The caller's portfolios, newest first."""
    return await ctx.run(ctx.services.portfolios.list_portfolios, ctx.user.id, limit=ctx.query.limit, cursor=ctx.query.cursor)


@route(bp, "v1/portfolios", name="create_portfolio", methods=["POST"], body=PortfolioCreate, response=PortfolioPublic,
       status=201, rate_group="write", tags=TAGS, errors=(401, 422, 503), location=lambda r: f"/api/v1/portfolios/{r.id}")
async def create_portfolio(req, ctx: RequestContext) -> PortfolioPublic:
    """Create a portfolio."""
    return await ctx.run(ctx.services.portfolios.create_portfolio, ctx.user.id, ctx.body)


@route(bp, "v1/portfolios/{portfolio_id}", response=PortfolioPublic, tags=TAGS, errors=(401, 404, 503))
async def get_portfolio(req, ctx: RequestContext) -> PortfolioPublic:
    """One of the caller's portfolios."""
    return await ctx.run(ctx.services.portfolios.get_portfolio, ctx.user.id, req.path_params["portfolio_id"])


@route(bp, "v1/portfolios/{portfolio_id}", name="update_portfolio", methods=["PATCH"], body=PortfolioUpdate,
       response=PortfolioPublic, rate_group="write", tags=TAGS, errors=(401, 404, 409, 412, 422, 503), current=_portfolio)
async def update_portfolio(req, ctx: RequestContext) -> PortfolioPublic:
    """Update a portfolio."""
    return await ctx.run(ctx.services.portfolios.update_portfolio, ctx.user.id, req.path_params["portfolio_id"],
                         ctx.body, ctx.expected_version)


@route(bp, "v1/portfolios/{portfolio_id}", name="delete_portfolio", methods=["DELETE"], status=204,
       rate_group="write", tags=TAGS, errors=(401, 404, 409, 412, 503), current=_portfolio)
async def delete_portfolio(req, ctx: RequestContext) -> None:
    """Delete a portfolio and its positions."""
    await ctx.run(ctx.services.portfolios.delete_portfolio, ctx.user.id, req.path_params["portfolio_id"], ctx.expected_version)


@route(bp, "v1/portfolios/{portfolio_id}/valuation", response=PortfolioValuation, tags=TAGS, errors=(401, 404, 503))
async def get_portfolio_valuation(req, ctx: RequestContext) -> PortfolioValuation:
    """Value every position at its current quote, with each quote's provenance.

    A failed quote is reported on its position and left out of totals (status `partial`), never defaulted.
    """
    return await ctx.run(ctx.services.portfolios.value_portfolio, ctx.user.id, req.path_params["portfolio_id"])


@route(bp, "v1/portfolios/{portfolio_id}/positions", query=PageQuery, response=PositionPage, tags=TAGS,
       errors=(400, 401, 404, 422, 503))
async def list_positions(req, ctx: RequestContext) -> PositionPage:
    """Positions of one portfolio, by symbol."""
    return await ctx.run(ctx.services.portfolios.list_positions, ctx.user.id, req.path_params["portfolio_id"],
                         limit=ctx.query.limit, cursor=ctx.query.cursor)


@route(bp, "v1/portfolios/{portfolio_id}/positions", name="create_position", methods=["POST"], body=PositionCreate,
       response=PositionPublic, status=201, rate_group="write", tags=TAGS, errors=(401, 404, 422, 502, 503),
       location=lambda r: f"/api/v1/portfolios/{r.portfolio_id}/positions/{r.id}")
async def create_position(req, ctx: RequestContext) -> PositionPublic:
    """Add a position (known symbol, quantity > 0, cost basis per unit >= 0)."""
    return await ctx.run(ctx.services.portfolios.create_position, ctx.user.id, req.path_params["portfolio_id"], ctx.body)


@route(bp, "v1/portfolios/{portfolio_id}/positions/{position_id}", response=PositionPublic, tags=TAGS, errors=(401, 404, 503))
async def get_position(req, ctx: RequestContext) -> PositionPublic:
    """One position."""
    return await ctx.run(ctx.services.portfolios.get_position, ctx.user.id, req.path_params["portfolio_id"],
                         req.path_params["position_id"])


@route(bp, "v1/portfolios/{portfolio_id}/positions/{position_id}", name="update_position", methods=["PATCH"],
       body=PositionUpdate, response=PositionPublic, rate_group="write", tags=TAGS, errors=(401, 404, 409, 412, 422, 503),
       current=_position)
async def update_position(req, ctx: RequestContext) -> PositionPublic:
    """Update quantity, cost basis or currency of a position."""
    return await ctx.run(ctx.services.portfolios.update_position, ctx.user.id, req.path_params["portfolio_id"],
                         req.path_params["position_id"], ctx.body, ctx.expected_version)


@route(bp, "v1/portfolios/{portfolio_id}/positions/{position_id}", name="delete_position", methods=["DELETE"],
       status=204, rate_group="write", tags=TAGS, errors=(401, 404, 409, 412, 503), current=_position)
async def delete_position(req, ctx: RequestContext) -> None:
    """Delete a position."""
    await ctx.run(ctx.services.portfolios.delete_position, ctx.user.id, req.path_params["portfolio_id"],
                  req.path_params["position_id"], ctx.expected_version)
