//! The {{service}} service over HTTP{% if consumes != "" %} and as a consumer of {{consumes}}{% endif %}, against real
//! PostgreSQL and NATS.

{% if consumes != "" %}mod events;
{% endif %}mod helpers;
mod {{resource}};
