//! The management API: a Cognito user pool for operators, an HTTP API whose
//! every route needs a Cognito JWT, and the function behind it.

use serde_json::json;

use super::api::{self, HttpApi};
use super::base::{self, alarm};
use super::iam::{Policy, table_and_indexes};
use super::{Stack, Template, destination_id, get_att, r#ref, sub};

/// Requests per second operators can make; the burst allows page loads.
const RATE_LIMIT: u64 = 50;

pub fn add(t: &mut Template, stack: &Stack<'_>) {
    t.retained(
        "AdminUserPool",
        "AWS::Cognito::UserPool",
        json!({
            "UserPoolName": stack.name("admins"),
            // Operators are invited; nobody signs themselves up.
            "AdminCreateUserConfig": { "AllowAdminCreateUserOnly": true },
            "UsernameAttributes": ["email"],
            "AutoVerifiedAttributes": ["email"],
            "MfaConfiguration": "OPTIONAL",
            "EnabledMfas": ["SOFTWARE_TOKEN_MFA"],
            "Policies": {
                "PasswordPolicy": {
                    "MinimumLength": 14,
                    "RequireLowercase": true,
                    "RequireNumbers": true,
                    "RequireSymbols": true,
                    "RequireUppercase": true,
                    "TemporaryPasswordValidityDays": 3,
                },
            },
            "AccountRecoverySetting": {
                "RecoveryMechanisms": [{ "Name": "verified_email", "Priority": 1 }],
            },
            "DeletionProtection": "ACTIVE",
        }),
    );
    t.resource(
        "AdminUserPoolClient",
        "AWS::Cognito::UserPoolClient",
        json!({
            "ClientName": stack.name("admin-ui"),
            "UserPoolId": r#ref("AdminUserPool"),
            // A browser app cannot keep a secret; SRP proves the password.
            "GenerateSecret": false,
            "ExplicitAuthFlows": ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_SRP_AUTH"],
            "SupportedIdentityProviders": ["COGNITO"],
            "PreventUserExistenceErrors": "ENABLED",
            "EnableTokenRevocation": true,
            "AccessTokenValidity": 1,
            "IdTokenValidity": 1,
            "RefreshTokenValidity": 12,
            "TokenValidityUnits": {
                "AccessToken": "hours",
                "IdToken": "hours",
                "RefreshToken": "hours",
            },
        }),
    );

    let config = &stack.sizing.management;
    let mut read = Vec::new();
    for id in [
        "IdentitiesTable",
        "ProfilesTable",
        "SegmentsTable",
        "StateTable",
    ] {
        read.extend(table_and_indexes(id));
    }
    let policy = Policy::default()
        .allow(
            "ReadProfilesAndIdentities",
            &[
                "dynamodb:BatchGetItem",
                "dynamodb:GetItem",
                "dynamodb:Query",
            ],
            read,
        )
        .allow(
            "DeleteProfilesAndSuppressIdentifiers",
            &[
                "dynamodb:BatchWriteItem",
                "dynamodb:DeleteItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
            ],
            vec![
                get_att("IdentitiesTable", "Arn"),
                get_att("ProfilesTable", "Arn"),
                get_att("SegmentsTable", "Arn"),
                get_att("StateTable", "Arn"),
            ],
        )
        .read_bundle()
        .data_key(&["kms:Decrypt", "kms:GenerateDataKey"]);
    // The destinations API: each queue's and dead-letter queue's depth,
    // peeking at and redriving dead letters (received, released or deleted
    // once back on the queue), and replayed events sent to the queues. The
    // queues are found by name (`GetQueueUrl`); the counters are items of
    // the state table, read above.
    let (queues, dlqs): (Vec<_>, Vec<_>) = stack
        .config
        .destinations
        .iter()
        .map(|d| {
            let id = destination_id(&d.name.value);
            (
                get_att(&format!("{id}Queue"), "Arn"),
                get_att(&format!("{id}Dlq"), "Arn"),
            )
        })
        .unzip();
    let policy = if queues.is_empty() {
        policy
    } else {
        policy
            .allow(
                "PeekAndRedriveDeadLetters",
                &[
                    "sqs:ChangeMessageVisibility",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:GetQueueUrl",
                    "sqs:ReceiveMessage",
                ],
                dlqs,
            )
            .allow(
                "SendToQueues",
                &[
                    "sqs:GetQueueAttributes",
                    "sqs:GetQueueUrl",
                    "sqs:SendMessage",
                ],
                queues,
            )
    };
    base::function(t, config, policy);

    api::add(
        t,
        HttpApi {
            id: "Management",
            name: stack.name("management"),
            description: "Uniflow management API (profiles, identities, config); every route needs a Cognito token",
            cors: None,
            throttle: (RATE_LIMIT, RATE_LIMIT * 2),
            log_retention_days: config.log_retention_days,
            timeout_ms: 30_000,
            paths: "api/v1/*",
        },
    );
    t.resource(
        "ManagementAuthorizer",
        "AWS::ApiGatewayV2::Authorizer",
        json!({
            "ApiId": r#ref("ManagementApi"),
            "Name": "cognito",
            "AuthorizerType": "JWT",
            "IdentitySource": ["$request.header.Authorization"],
            "JwtConfiguration": {
                "Audience": [r#ref("AdminUserPoolClient")],
                "Issuer": sub("https://cognito-idp.${AWS::Region}.${AWS::URLSuffix}/${AdminUserPool}"),
            },
        }),
    );
    t.resource(
        "ManagementRoute",
        "AWS::ApiGatewayV2::Route",
        json!({
            "ApiId": r#ref("ManagementApi"),
            "RouteKey": "ANY /api/v1/{proxy+}",
            "AuthorizationType": "JWT",
            "AuthorizerId": r#ref("ManagementAuthorizer"),
            "Target": sub("integrations/${ManagementIntegration}"),
        }),
    );
    alarm(
        t,
        "ManagementErrorsAlarm",
        "The management API function failed",
        ("AWS/Lambda", "Errors", "Sum"),
        json!([{ "Name": "FunctionName", "Value": r#ref("ManagementFunction") }]),
        1,
    );

    t.output(
        "ManagementApiUrl",
        "Base URL of the management API (send a Cognito ID token as Authorization)",
        sub("https://${ManagementApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"),
    );
    t.output(
        "AdminUserPoolId",
        "Cognito user pool of operators",
        r#ref("AdminUserPool"),
    );
    t.output(
        "AdminUserPoolClientId",
        "Cognito app client of the admin UI",
        r#ref("AdminUserPoolClient"),
    );
}
