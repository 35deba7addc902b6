//! Renders a plan as text for people, markdown for a pull request, or JSON.
