"""The shared domain of MAIS: models, tenancy, the booking path, payments and notifications."""
