"""Placeholder blueprint; replaced by its owner."""

from flask import Blueprint

pages = Blueprint("pages", __name__)
