"""Placeholder blueprint; replaced by its owner."""

from flask import Blueprint

api = Blueprint("api", __name__)
