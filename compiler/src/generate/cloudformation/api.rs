//! An API Gateway HTTP API in front of one function: the API, its Lambda
//! proxy integration, a `$default` stage with JSON access logs and
//! throttling, and the permission for this API alone to invoke the function.
//! Callers add the routes (and an authorizer).

use serde_json::{Value, json};

use super::{Template, get_att, key_arn, r#ref, sub};

/// One access-log line per request, as JSON (API Gateway variables).
pub const ACCESS_LOG_FORMAT: &str = r#"{"requestId":"$context.requestId","requestTime":"$context.requestTime","routeKey":"$context.routeKey","status":"$context.status","responseLength":"$context.responseLength","latencyMs":"$context.responseLatency","integrationError":"$context.integrationErrorMessage","sourceIp":"$context.identity.sourceIp","userAgent":"$context.identity.userAgent"}"#;

/// What differs between the tracking API and the management API.
pub struct HttpApi<'a> {
    /// Logical id prefix: `Ingest` gives `IngestApi`, `IngestIntegration`, ...
    pub id: &'a str,
    /// The API's name in AWS.
    pub name: String,
    /// What it serves.
    pub description: &'a str,
    /// `CorsConfiguration`, when browsers call it.
    pub cors: Option<Value>,
    /// Steady-state and burst request rate limits.
    pub throttle: (u64, u64),
    /// Days its access logs are kept.
    pub log_retention_days: u32,
    /// How long the integration may take.
    pub timeout_ms: u64,
    /// The invoke permission's path pattern: `v1/*`.
    pub paths: &'a str,
}

pub fn add(t: &mut Template, api: HttpApi<'_>) {
    let id = api.id;
    let function = format!("{id}Function");
    let mut properties = json!({
        "Name": api.name,
        "Description": api.description,
        "ProtocolType": "HTTP",
    });
    if let Some(cors) = api.cors {
        properties["CorsConfiguration"] = cors;
    }
    t.resource(format!("{id}Api"), "AWS::ApiGatewayV2::Api", properties);
    t.resource(
        format!("{id}Integration"),
        "AWS::ApiGatewayV2::Integration",
        json!({
            "ApiId": r#ref(&format!("{id}Api")),
            "IntegrationType": "AWS_PROXY",
            "IntegrationUri": get_att(&function, "Arn"),
            "PayloadFormatVersion": "2.0",
            "TimeoutInMillis": api.timeout_ms,
        }),
    );
    t.disposable(
        format!("{id}ApiAccessLogs"),
        "AWS::Logs::LogGroup",
        json!({
            "LogGroupName": format!("/aws/apigateway/{}", api.name),
            "RetentionInDays": api.log_retention_days,
            "KmsKeyId": key_arn(),
        }),
    );
    t.resource(
        format!("{id}ApiStage"),
        "AWS::ApiGatewayV2::Stage",
        json!({
            "ApiId": r#ref(&format!("{id}Api")),
            "StageName": "$default",
            "AutoDeploy": true,
            "AccessLogSettings": {
                "DestinationArn": get_att(&format!("{id}ApiAccessLogs"), "Arn"),
                "Format": ACCESS_LOG_FORMAT,
            },
            "DefaultRouteSettings": {
                "ThrottlingRateLimit": api.throttle.0,
                "ThrottlingBurstLimit": api.throttle.1,
                "DetailedMetricsEnabled": true,
            },
        }),
    );
    t.resource(
        format!("{id}ApiInvokePermission"),
        "AWS::Lambda::Permission",
        json!({
            "Action": "lambda:InvokeFunction",
            "FunctionName": r#ref(&function),
            "Principal": "apigateway.amazonaws.com",
            "SourceAccount": r#ref("AWS::AccountId"),
            "SourceArn": sub(&format!(
                "arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{{id}Api}}/*/*/{}",
                api.paths
            )),
        }),
    );
}
